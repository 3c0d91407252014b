package streamrec.spark;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.IntStream;
import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;

/**
 * Collects the 64-bit keys of the rows another query reads, to count distinct keys and keys
 * that occur more than once, exactly, without a pass of its own: the query evaluates
 * {@link #tap(Column)} on each row's key.
 *
 * <p>Each task keeps its keys, mixed by a reversible hash, in a {@link LongKeyBuffer}, and groups
 * them by their top bits when it completes. The driver keeps the keys of every partition, 8 bytes
 * a key, and counts them one bucket at a time. A buffer that would exceed its key limit, or
 * partitions whose keys together exceed it, make the counts null, and the caller must count
 * another way.
 */
public final class KeySetAccumulator extends PartitionAccumulator<Long, LongKeyBuffer> {
  private static final long serialVersionUID = 1L;

  /** Share of a JVM's maximum heap that one buffer's keys may take when no limit is given. */
  static final int HEAP_SHARE_DIVISOR = 16;

  /** Below this many keys the driver counts them on one thread. */
  static final long PARALLEL_COUNT_MIN_KEYS = 1 << 20;
  // Number of bucket ranges that a large count is split into, for the common pool's threads.
  private static final int COUNT_RANGES = 16;

  private final long maxKeys;

  KeySetAccumulator(long maxKeys) {
    if (maxKeys < 0) {
      throw new IllegalArgumentException("maxKeys must be 0 or positive, got " + maxKeys);
    }
    this.maxKeys = maxKeys;
  }

  /**
   * Creates an accumulator whose buffers hold at most {@code maxKeys} keys each, or a share of
   * each JVM's heap if 0, registered with the session's context.
   */
  public static KeySetAccumulator register(SparkSession spark, long maxKeys) {
    KeySetAccumulator accumulator = new KeySetAccumulator(maxKeys);
    spark.sparkContext().register(accumulator);
    return accumulator;
  }

  /**
   * Counts the keys of all partitions, or returns null counts if a buffer hit its limit. A large
   * count is split into bucket ranges over the driver's cores.
   */
  public KeyCounts counts() {
    List<LongKeyBuffer> buffers = new ArrayList<>();
    long total = 0;
    for (Part<LongKeyBuffer> part : driverParts()) {
      if (part.state.overflowed()) {
        return new KeyCounts(null, null);
      }
      part.state.group();
      buffers.add(part.state);
      total += part.state.size();
    }
    long limit = limit();
    if (total > limit) {
      return new KeyCounts(null, null);
    }

    int ranges = total >= PARALLEL_COUNT_MIN_KEYS ? COUNT_RANGES : 1;
    int bucketsPerRange = LongKeyBuffer.BUCKETS / ranges;
    long[][] perRange = new long[ranges][];
    IntStream.range(0, ranges).parallel().forEach(range ->
        perRange[range] = LongKeyBuffer.countBuckets(
            buffers, range * bucketsPerRange, (range + 1) * bucketsPerRange));

    long distinct = 0;
    long repeated = 0;
    for (long[] counts : perRange) {
      distinct += counts[0];
      repeated += counts[1];
    }
    return new KeyCounts(distinct, repeated);
  }

  /**
   * Drops the keys of every partition once their total exceeds the limit, instead of keeping
   * them until {@link #counts()}. The driver checks a direct task result (as in local mode)
   * against spark.driver.maxResultSize by its value alone, so the key sets escape that check.
   */
  @Override
  protected void afterMerge(TreeMap<Integer, Part<LongKeyBuffer>> merged) {
    long total = 0;
    for (Part<LongKeyBuffer> part : merged.values()) {
      total += part.state.size();
    }
    if (total <= limit()) {
      return;
    }
    for (Map.Entry<Integer, Part<LongKeyBuffer>> entry : merged.entrySet()) {
      if (!entry.getValue().state.overflowed()) {
        entry.setValue(new Part<>(LongKeyBuffer.dropped(), entry.getValue().recorded));
      }
    }
  }

  /** Returns the number of keys the driver keeps for {@link #counts()}, repeats included. */
  public long heldKeys() {
    long total = 0;
    for (Part<LongKeyBuffer> part : driverParts()) {
      total += part.state.size();
    }
    return total;
  }

  private long limit() {
    if (maxKeys > 0) {
      return maxKeys;
    }
    return Runtime.getRuntime().maxMemory() / HEAP_SHARE_DIVISOR / Long.BYTES;
  }

  @Override
  protected LongKeyBuffer newState() {
    return new LongKeyBuffer(limit());
  }

  @Override
  protected void record(LongKeyBuffer state, Long key) {
    state.add(spread(key));
  }

  @Override
  DataType tapType() {
    return DataTypes.LongType;
  }

  @Override
  String tapMethod() {
    return "recordKey";
  }

  @Override
  boolean recordBoxed(Object value) {
    return recordKey((Long) value);
  }

  /**
   * Records one key and returns true; the generated code of {@link TapExpression} calls this
   * for each row.
   */
  public boolean recordKey(long key) {
    nextState().add(spread(key));
    return true;
  }

  /**
   * Mixes the bits of a key with MurmurHash3's 64-bit finalizer. Each step (xor with a right
   * shift, multiplication by an odd constant) can be undone, so distinct keys stay distinct and
   * the counts are exact; the mixed keys are spread evenly over the buffer's buckets and the
   * slots of its hash tables.
   */
  static long spread(long key) {
    long h = key;
    h ^= h >>> 33;
    h *= 0xff51afd7ed558ccdL;
    h ^= h >>> 33;
    h *= 0xc4ceb9fe1a85ec53L;
    h ^= h >>> 33;
    return h;
  }

  @Override
  protected LongKeyBuffer finish(LongKeyBuffer state) {
    state.group();
    return state;
  }

  @Override
  protected KeySetAccumulator emptyCopy() {
    return new KeySetAccumulator(maxKeys);
  }
}
