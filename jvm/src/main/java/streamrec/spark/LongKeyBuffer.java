package streamrec.spark;

import java.io.Externalizable;
import java.io.IOException;
import java.io.ObjectInput;
import java.io.ObjectOutput;
import java.nio.ByteBuffer;
import java.util.Arrays;
import java.util.List;

/**
 * The keys one task of {@link KeySetAccumulator} has seen, repeats included, in one primitive
 * array.
 *
 * <p>A task appends its keys and, when it completes, groups them by their top
 * {@link #BUCKET_BITS} bits with one counting pass and one distribution pass ({@link #group()}).
 * It neither sorts them nor drops repeats. The driver counts the keys of all tasks one bucket at
 * a time, in a hash table small enough for a core's cache ({@link #countBuckets}). A key falls
 * in the same bucket in every task, so the buckets can be counted in parallel. Callers spread
 * their keys with a hash so that the buckets fill evenly.
 *
 * <p>A buffer that would exceed {@code maxValues} keys drops its array and is marked
 * overflowed, so the accumulator returns null counts instead of failing the task with an
 * OutOfMemoryError.
 */
public final class LongKeyBuffer implements Externalizable {
  private static final long serialVersionUID = 1L;
  private static final int INITIAL_CAPACITY = 1024;

  /** Number of top bits that group the keys: 256 buckets, few enough to distribute in cache. */
  static final int BUCKET_BITS = 8;
  static final int BUCKETS = 1 << BUCKET_BITS;
  /** Number of keys per chunk when writing and reading, so no byte array is as large as the keys. */
  private static final int IO_CHUNK_KEYS = 8192;
  /** Maximum number of keys in one bucket that {@link #countBuckets} can count: 2^30 slots. */
  static final long MAX_BUCKET_KEYS = 1L << 29;

  private long[] values = new long[INITIAL_CAPACITY];
  private int size;
  private boolean overflowed;
  // True while values[0, size) is in bucket order, so group() has nothing to do.
  private boolean grouped = true;
  private long maxValues;

  /** Creates an empty buffer; Java serialization needs this public constructor. */
  public LongKeyBuffer() {
    this(Integer.MAX_VALUE - 8);
  }

  LongKeyBuffer(long maxValues) {
    this.maxValues = Math.min(maxValues, Integer.MAX_VALUE - 8);
  }

  /** Returns a buffer that contains no keys and reads as overflowed. */
  static LongKeyBuffer dropped() {
    LongKeyBuffer buffer = new LongKeyBuffer();
    buffer.overflow();
    return buffer;
  }

  boolean overflowed() {
    return overflowed;
  }

  /** Returns the number of keys in the buffer, repeats included. */
  int size() {
    return size;
  }

  static int bucketOf(long key) {
    return (int) (key >>> (Long.SIZE - BUCKET_BITS));
  }

  void add(long value) {
    if (overflowed) {
      return;
    }
    if (size == values.length && !reserve(1)) {
      return;
    }
    values[size++] = value;
    grouped = false;
  }

  /** Puts the keys in bucket order; the order within a bucket is the order of arrival. */
  void group() {
    if (overflowed || grouped) {
      return;
    }
    int[] next = new int[BUCKETS + 1];
    for (int i = 0; i < size; i++) {
      next[bucketOf(values[i]) + 1]++;
    }
    for (int bucket = 1; bucket <= BUCKETS; bucket++) {
      next[bucket] += next[bucket - 1];
    }
    long[] inOrder = new long[size];
    for (int i = 0; i < size; i++) {
      long value = values[i];
      inOrder[next[bucketOf(value)]++] = value;
    }
    values = inOrder;
    grouped = true;
  }

  /**
   * Counts the distinct keys, and the keys that occur more than once, of several grouped
   * buffers, which it only reads, in buckets [{@code fromBucket}, {@code toBucket}). Disjoint
   * bucket ranges can be counted in parallel. Returns {distinct, repeated}.
   */
  static long[] countBuckets(List<LongKeyBuffer> buffers, int fromBucket, int toBucket) {
    int runs = buffers.size();
    int[] start = new int[runs];
    int[] end = new int[runs];
    for (int run = 0; run < runs; run++) {
      LongKeyBuffer buffer = buffers.get(run);
      end[run] = firstInBucketAtLeast(buffer.values, 0, buffer.size, fromBucket);
    }
    // Open addressing with linear probing. State 0 is an empty slot, 1 a key seen once and 2 a
    // key seen more than once. The keys are spread by a hash, so their low bits index the slots.
    long[] slots = new long[0];
    byte[] state = new byte[0];
    long distinct = 0;
    long repeated = 0;
    for (int bucket = fromBucket; bucket < toBucket; bucket++) {
      long inBucket = 0;
      for (int run = 0; run < runs; run++) {
        LongKeyBuffer buffer = buffers.get(run);
        start[run] = end[run];
        end[run] = firstInBucketAtLeast(buffer.values, start[run], buffer.size, bucket + 1);
        inBucket += end[run] - start[run];
      }
      if (inBucket == 0) {
        continue;
      }
      int capacity = tableCapacity(inBucket);
      if (slots.length < capacity) {
        slots = new long[capacity];
        state = new byte[capacity];
      } else {
        Arrays.fill(state, 0, capacity, (byte) 0);
      }
      int mask = capacity - 1;
      for (int run = 0; run < runs; run++) {
        long[] values = buffers.get(run).values;
        for (int i = start[run]; i < end[run]; i++) {
          long key = values[i];
          int slot = (int) key & mask;
          while (state[slot] != 0 && slots[slot] != key) {
            slot = (slot + 1) & mask;
          }
          if (state[slot] == 0) {
            slots[slot] = key;
            state[slot] = 1;
            distinct++;
          } else if (state[slot] == 1) {
            state[slot] = 2;
            repeated++;
          }
        }
      }
    }
    return new long[] {distinct, repeated};
  }

  /**
   * Returns the smallest power of two that is at least twice {@code keys}, so that a table of
   * that many slots is at most half full.
   */
  static int tableCapacity(long keys) {
    if (keys > MAX_BUCKET_KEYS) {
      // Unreachable under the accumulator's key limit unless the keys are not spread by a hash.
      throw new IllegalStateException(
          keys + " keys in one bucket; at most " + MAX_BUCKET_KEYS + " fit a hash table");
    }
    return Integer.highestOneBit((int) (2 * keys - 1)) << 1;
  }

  /** Returns the first index in [from, to) of grouped {@code values} whose bucket is >= {@code bucket}. */
  private static int firstInBucketAtLeast(long[] values, int from, int to, int bucket) {
    if (bucket >= BUCKETS) {
      return to;
    }
    int low = from;
    int high = to;
    while (low < high) {
      int middle = (low + high) >>> 1;
      if (bucketOf(values[middle]) < bucket) {
        low = middle + 1;
      } else {
        high = middle;
      }
    }
    return low;
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
    size = 0;
  }

  /**
   * Writes the grouped keys once per task, as raw 8-byte values in chunks: the keys are hashes,
   * so a compact encoding would save little and cost a loop per key on both sides.
   */
  @Override
  public void writeExternal(ObjectOutput out) throws IOException {
    group();
    out.writeBoolean(overflowed);
    out.writeLong(maxValues);
    out.writeInt(size);
    byte[] chunk = new byte[Math.min(size, IO_CHUNK_KEYS) * Long.BYTES];
    ByteBuffer view = ByteBuffer.wrap(chunk);
    for (int from = 0; from < size; from += IO_CHUNK_KEYS) {
      int keys = Math.min(IO_CHUNK_KEYS, size - from);
      view.clear();
      view.asLongBuffer().put(values, from, keys);
      out.write(chunk, 0, keys * Long.BYTES);
    }
  }

  @Override
  public void readExternal(ObjectInput in) throws IOException {
    overflowed = in.readBoolean();
    maxValues = in.readLong();
    size = in.readInt();
    values = new long[size];
    byte[] chunk = new byte[Math.min(size, IO_CHUNK_KEYS) * Long.BYTES];
    ByteBuffer view = ByteBuffer.wrap(chunk);
    for (int from = 0; from < size; from += IO_CHUNK_KEYS) {
      int keys = Math.min(IO_CHUNK_KEYS, size - from);
      in.readFully(chunk, 0, keys * Long.BYTES);
      view.clear();
      view.asLongBuffer().get(values, from, keys);
    }
    grouped = true;
  }
}
