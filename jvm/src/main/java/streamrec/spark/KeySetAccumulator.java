package streamrec.spark;

import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.apache.spark.sql.SparkSession;

/**
 * Collects the 64-bit keys of the rows another query reads, to count distinct keys and keys
 * that occur more than once, exactly, without a pass of its own: the query evaluates
 * {@link #tap(Column)} on each row's key.
 *
 * <p>Each task keeps its keys, mixed by a reversible hash, in a {@link LongKeyBuffer}, and sorts
 * them and drops repeats when it completes. The driver keeps the sorted keys of every partition,
 * 8 bytes a key, and merges them without copying. A buffer that would exceed its key limit, or
 * partitions whose keys together exceed it, make the counts null, and the caller must count
 * another way.
 */
public final class KeySetAccumulator extends PartitionAccumulator<Long, LongKeyBuffer> {
  private static final long serialVersionUID = 1L;

  /** Share of a JVM's maximum heap that one buffer's keys may take when no limit is given. */
  static final int HEAP_SHARE_DIVISOR = 16;

  /** Below this many keys the driver merges on one thread. */
  static final long PARALLEL_MERGE_MIN_KEYS = 1 << 20;
  private static final int MAX_MERGE_BITS = 6;

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
   * Merges the keys of all partitions; the counts are null if a buffer hit its limit. Large
   * merges are split by the keys' top bits over the driver's cores.
   */
  public KeyCounts counts() {
    List<LongKeyBuffer> buffers = new ArrayList<>();
    long total = 0;
    for (Part<LongKeyBuffer> part : driverParts()) {
      if (part.state.overflowed()) {
        return new KeyCounts(null, null);
      }
      part.state.compact();
      buffers.add(part.state);
      total += part.state.size();
    }
    long limit = limit();
    if (total > limit) {
      return new KeyCounts(null, null);
    }

    int bits = 0;
    if (total >= PARALLEL_MERGE_MIN_KEYS) {
      int cores = Runtime.getRuntime().availableProcessors();
      bits = Math.min(MAX_MERGE_BITS, 32 - Integer.numberOfLeadingZeros(Math.max(1, cores - 1)));
    }
    int prefixBits = bits;
    long[][] perPrefix = new long[1 << bits][];
    IntStream.range(0, perPrefix.length).parallel().forEach(prefix ->
        perPrefix[prefix] = LongKeyBuffer.countPrefix(buffers, prefix, prefixBits));

    long distinct = 0;
    long repeated = 0;
    for (long[] counts : perPrefix) {
      distinct += counts[0];
      repeated += counts[1];
    }
    return new KeyCounts(distinct, repeated);
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

  /**
   * Mixes the bits of a key with MurmurHash3's 64-bit finalizer. Each step (xor with a right
   * shift, multiplication by an odd constant) can be undone, so distinct keys stay distinct and
   * the counts are exact; the mixed keys are spread evenly, which {@link UniformSort} needs.
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
    state.compact();
    return state;
  }

  @Override
  protected KeySetAccumulator emptyCopy() {
    return new KeySetAccumulator(maxKeys);
  }
}
