package streamrec.spark;

import java.io.Externalizable;
import java.io.IOException;
import java.io.ObjectInput;
import java.io.ObjectOutput;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;

/**
 * The keys one task of {@link KeySetAccumulator} has seen, in primitive arrays, and the keys
 * already known to occur more than once.
 *
 * <p>{@code values} may contain repeats until {@link #compact()} runs. After it, {@code values}
 * contains each key once, sorted, and {@code repeated} contains each key that occurred more than
 * once, sorted. Every key in {@code repeated} is also in {@code values}. A buffer that would
 * exceed {@code maxValues} keys drops its arrays and is marked overflowed, so the accumulator
 * returns null counts instead of failing the task with an OutOfMemoryError.
 */
public final class LongKeyBuffer implements Externalizable {
  private static final long serialVersionUID = 1L;
  private static final int INITIAL_CAPACITY = 1024;

  private long[] values = new long[INITIAL_CAPACITY];
  private int size;
  private long[] repeated = new long[0];
  private int repeatedSize;
  private boolean overflowed;
  // True while values contains each key once, sorted, so compact() has nothing to do.
  private boolean compacted;
  private long maxValues;

  /** Creates an empty buffer; Java serialization needs this public constructor. */
  public LongKeyBuffer() {
    this(Integer.MAX_VALUE - 8);
  }

  LongKeyBuffer(long maxValues) {
    this.maxValues = Math.min(maxValues, Integer.MAX_VALUE - 8);
  }

  boolean overflowed() {
    return overflowed;
  }

  void add(long value) {
    if (overflowed) {
      return;
    }
    if (size == values.length && !reserve(1)) {
      return;
    }
    values[size++] = value;
    compacted = false;
  }

  /**
   * Counts the distinct and the repeated keys of several compacted buffers, which it only reads,
   * among the keys whose top {@code bits} bits equal {@code prefix}. Each buffer is sorted in
   * unsigned order, so the keys of one prefix are a contiguous run of it: disjoint prefixes can
   * be counted in parallel. The runs are merged through a heap of their next keys, without
   * copying them. Returns {distinct, repeated}.
   */
  static long[] countPrefix(List<LongKeyBuffer> buffers, int prefix, int bits) {
    int runs = buffers.size();
    int[] position = new int[runs];
    int[] end = new int[runs];
    int[] repeatedPosition = new int[runs];
    // heap[0, heapSize) contains run numbers ordered by their next key, smallest first.
    int[] heap = new int[runs];
    int heapSize = 0;
    for (int run = 0; run < runs; run++) {
      LongKeyBuffer buffer = buffers.get(run);
      position[run] = firstWithPrefixAtLeast(buffer.values, buffer.size, prefix, bits);
      end[run] = firstWithPrefixAtLeast(buffer.values, buffer.size, prefix + 1, bits);
      repeatedPosition[run] = firstWithPrefixAtLeast(buffer.repeated, buffer.repeatedSize, prefix, bits);
      if (position[run] < end[run]) {
        heap[heapSize++] = run;
        siftUp(heap, heapSize - 1, buffers, position);
      }
    }
    long distinct = 0;
    long repeated = 0;
    while (heapSize > 0) {
      long key = keyAt(buffers, position, heap[0]);
      int copies = 0;
      boolean repeatedInRun = false;
      while (heapSize > 0 && keyAt(buffers, position, heap[0]) == key) {
        int run = heap[0];
        copies++;
        repeatedInRun |= advanceRepeated(buffers.get(run), repeatedPosition, run, key);
        position[run]++;
        if (position[run] == end[run]) {
          heap[0] = heap[--heapSize];
        }
        siftDown(heap, heapSize, buffers, position);
      }
      distinct++;
      if (copies > 1 || repeatedInRun) {
        repeated++;
      }
    }
    return new long[] {distinct, repeated};
  }

  private static long keyAt(List<LongKeyBuffer> buffers, int[] position, int run) {
    return buffers.get(run).values[position[run]];
  }

  /** Moves the run's repeated-key cursor past {@code key}; returns whether it found the key. */
  private static boolean advanceRepeated(LongKeyBuffer buffer, int[] repeatedPosition, int run, long key) {
    int i = repeatedPosition[run];
    while (i < buffer.repeatedSize && Long.compareUnsigned(buffer.repeated[i], key) < 0) {
      i++;
    }
    boolean found = i < buffer.repeatedSize && buffer.repeated[i] == key;
    repeatedPosition[run] = found ? i + 1 : i;
    return found;
  }

  private static void siftUp(int[] heap, int index, List<LongKeyBuffer> buffers, int[] position) {
    int run = heap[index];
    long key = keyAt(buffers, position, run);
    while (index > 0) {
      int parent = (index - 1) >>> 1;
      if (Long.compareUnsigned(keyAt(buffers, position, heap[parent]), key) <= 0) {
        break;
      }
      heap[index] = heap[parent];
      index = parent;
    }
    heap[index] = run;
  }

  private static void siftDown(int[] heap, int heapSize, List<LongKeyBuffer> buffers, int[] position) {
    if (heapSize == 0) {
      return;
    }
    int run = heap[0];
    long key = keyAt(buffers, position, run);
    int index = 0;
    while (true) {
      int child = 2 * index + 1;
      if (child >= heapSize) {
        break;
      }
      if (child + 1 < heapSize && Long.compareUnsigned(
          keyAt(buffers, position, heap[child + 1]), keyAt(buffers, position, heap[child])) < 0) {
        child++;
      }
      if (Long.compareUnsigned(keyAt(buffers, position, heap[child]), key) >= 0) {
        break;
      }
      heap[index] = heap[child];
      index = child;
    }
    heap[index] = run;
  }

  /** Returns the first index of {@code sorted} whose top {@code bits} bits are >= {@code prefix}. */
  private static int firstWithPrefixAtLeast(long[] sorted, int length, int prefix, int bits) {
    if (bits == 0) {
      return prefix == 0 ? 0 : length;
    }
    int low = 0;
    int high = length;
    while (low < high) {
      int middle = (low + high) >>> 1;
      if ((sorted[middle] >>> (64 - bits)) < prefix) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    return low;
  }

  /** Returns the number of keys held, repeats included until {@link #compact()} runs. */
  int size() {
    return size;
  }

  /**
   * Sorts the keys in unsigned order, keeps one copy of each and records every key seen more
   * than once. The sort is fast for keys spread evenly over 64 bits; callers hash their keys.
   */
  void compact() {
    if (overflowed || compacted) {
      return;
    }
    UniformSort.sort(values, size);
    int distinct = 0;
    int newRepeats = 0;
    long[] newlyRepeated = new long[0];
    for (int i = 0; i < size; ) {
      long value = values[i];
      int end = i + 1;
      while (end < size && values[end] == value) {
        end++;
      }
      values[distinct++] = value;
      if (end - i > 1) {
        if (newRepeats == newlyRepeated.length) {
          newlyRepeated = Arrays.copyOf(newlyRepeated, Math.max(16, newlyRepeated.length * 2));
        }
        newlyRepeated[newRepeats++] = value;
      }
      i = end;
    }
    size = distinct;
    repeated = appendTo(repeated, repeatedSize, newlyRepeated, newRepeats);
    UniformSort.sort(repeated, repeatedSize + newRepeats);
    repeatedSize = removeRepeats(repeated, repeatedSize + newRepeats);
    compacted = true;
  }

  private boolean reserve(int extra) {
    long needed = (long) size + extra;
    if (needed > maxValues) {
      overflow();
      return false;
    }
    if (needed > values.length) {
      long grown = Math.max(needed, values.length + (values.length >> 1));
      values = Arrays.copyOf(values, (int) Math.min(grown, maxValues));
    }
    return true;
  }

  private void overflow() {
    overflowed = true;
    values = new long[0];
    repeated = new long[0];
    size = 0;
    repeatedSize = 0;
  }

  private static long[] appendTo(long[] target, int targetSize, long[] source, int sourceSize) {
    if (sourceSize == 0) {
      return target;
    }
    long[] result = targetSize + sourceSize <= target.length
        ? target
        : Arrays.copyOf(target, targetSize + sourceSize);
    System.arraycopy(source, 0, result, targetSize, sourceSize);
    return result;
  }

  private static int removeRepeats(long[] sorted, int length) {
    int uniqueCount = 0;
    for (int i = 0; i < length; i++) {
      if (uniqueCount == 0 || sorted[uniqueCount - 1] != sorted[i]) {
        sorted[uniqueCount++] = sorted[i];
      }
    }
    return uniqueCount;
  }

  /**
   * Writes the compacted keys once per task, as raw 8-byte values: the keys are hashes, so a
   * compact encoding would save little and cost a loop per key on both sides.
   */
  @Override
  public void writeExternal(ObjectOutput out) throws IOException {
    compact();
    out.writeBoolean(overflowed);
    out.writeLong(maxValues);
    writeSorted(out, values, size);
    writeSorted(out, repeated, repeatedSize);
  }

  @Override
  public void readExternal(ObjectInput in) throws IOException {
    overflowed = in.readBoolean();
    maxValues = in.readLong();
    values = readSorted(in);
    size = values.length;
    repeated = readSorted(in);
    repeatedSize = repeated.length;
    compacted = true;
  }

  private static void writeSorted(ObjectOutput out, long[] sorted, int length) throws IOException {
    ByteBuffer bytes = ByteBuffer.allocate(length * Long.BYTES);
    bytes.asLongBuffer().put(sorted, 0, length);
    out.writeInt(length);
    out.write(bytes.array());
  }

  private static long[] readSorted(ObjectInput in) throws IOException {
    int length = in.readInt();
    byte[] bytes = new byte[length * Long.BYTES];
    in.readFully(bytes);
    long[] sorted = new long[length];
    ByteBuffer.wrap(bytes).asLongBuffer().get(sorted);
    return sorted;
  }
}
