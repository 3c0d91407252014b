package streamrec.spark;

import java.io.Externalizable;
import java.io.IOException;
import java.io.ObjectInput;
import java.io.ObjectOutput;
import java.util.Arrays;

/**
 * Aggregation buffer of {@link LongKeyCountAggregator}: the 64-bit keys seen so far in primitive
 * arrays, and the keys already known to occur more than once.
 *
 * <p>{@code values} may contain repeats until {@link #compact()} runs. After it, {@code values}
 * contains each key once, sorted, and {@code repeated} contains each key that occurred more than
 * once, sorted. Every key in {@code repeated} is also in {@code values}. A buffer that would
 * exceed {@code maxValues} keys drops its arrays and is marked overflowed, so the aggregate
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
  }

  /** Appends the keys of {@code other}, which is left unchanged. */
  void addAll(LongKeyBuffer other) {
    if (overflowed) {
      return;
    }
    if (other.overflowed) {
      overflow();
      return;
    }
    if (!reserve(other.size)) {
      return;
    }
    System.arraycopy(other.values, 0, values, size, other.size);
    size += other.size;
    repeated = appendTo(repeated, repeatedSize, other.repeated, other.repeatedSize);
    repeatedSize += other.repeatedSize;
  }

  /** Returns the number of distinct keys; the buffer must not have overflowed. */
  long distinctCount() {
    compact();
    return size;
  }

  /** Returns the number of keys that occur more than once; the buffer must not have overflowed. */
  long repeatedCount() {
    compact();
    return repeatedSize;
  }

  /**
   * Sorts the keys, keeps one copy of each and records every key seen more than once. Merged
   * partial buffers arrive as sorted runs, which OpenJDK's DualPivotQuicksort detects and merges.
   */
  void compact() {
    if (overflowed) {
      return;
    }
    Arrays.sort(values, 0, size);
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
    Arrays.sort(repeated, 0, repeatedSize + newRepeats);
    repeatedSize = removeRepeats(repeated, repeatedSize + newRepeats);
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
   * Writes the compacted keys as sorted deltas in unsigned LEB128 varints, once per task. A delta
   * below 16384, common between sorted user ids, takes two bytes or fewer instead of eight.
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
  }

  private static void writeSorted(ObjectOutput out, long[] sorted, int length) throws IOException {
    int bytes = 0;
    long previous = 0;
    for (int i = 0; i < length; i++) {
      bytes += varintLength(sorted[i] - previous);
      previous = sorted[i];
    }
    byte[] encoded = new byte[bytes];
    int position = 0;
    previous = 0;
    for (int i = 0; i < length; i++) {
      // The difference of two sorted signed keys is non-negative when read as unsigned.
      long delta = sorted[i] - previous;
      previous = sorted[i];
      while ((delta & ~0x7FL) != 0) {
        encoded[position++] = (byte) ((delta & 0x7F) | 0x80);
        delta >>>= 7;
      }
      encoded[position++] = (byte) delta;
    }
    out.writeInt(length);
    out.writeInt(bytes);
    out.write(encoded);
  }

  private static long[] readSorted(ObjectInput in) throws IOException {
    int length = in.readInt();
    byte[] encoded = new byte[in.readInt()];
    in.readFully(encoded);
    long[] sorted = new long[length];
    int position = 0;
    long previous = 0;
    for (int i = 0; i < length; i++) {
      long delta = 0;
      int shift = 0;
      byte b;
      do {
        b = encoded[position++];
        delta |= (long) (b & 0x7F) << shift;
        shift += 7;
      } while (b < 0);
      previous += delta;
      sorted[i] = previous;
    }
    return sorted;
  }

  private static int varintLength(long value) {
    int length = 1;
    while ((value & ~0x7FL) != 0) {
      value >>>= 7;
      length++;
    }
    return length;
  }
}
