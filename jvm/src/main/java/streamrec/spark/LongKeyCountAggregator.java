package streamrec.spark;

import org.apache.spark.sql.Column;
import org.apache.spark.sql.Encoder;
import org.apache.spark.sql.Encoders;
import org.apache.spark.sql.expressions.Aggregator;
import org.apache.spark.sql.functions;

/**
 * Counts the distinct keys of a BIGINT column and the keys that occur more than once, exactly
 * and without a shuffle, so both counts can share a scan with other aggregates.
 *
 * <p>Each task collects its keys in a primitive array and serializes them sorted and without
 * repeats. The single final task merges all partial buffers, so it stores every distinct key: 8
 * bytes per key, plus up to half as much again while an array grows. Nulls are skipped. When a
 * buffer would exceed its key limit, the counts are null and the caller must count another way.
 */
public final class LongKeyCountAggregator extends Aggregator<Long, LongKeyBuffer, KeyCounts> {
  private static final long serialVersionUID = 1L;

  /**
   * Share of the JVM's maximum heap that one buffer's keys may take by default. One buffer per
   * key column lives in the final task, next to whatever else the JVM runs, so the share is small.
   * NOTE: the share is a judgment, not a measured bound. Spark's memory manager does not track
   * these buffers, so a JVM already short of heap can still fail with an OutOfMemoryError.
   */
  static final int HEAP_SHARE_DIVISOR = 16;

  private final long maxValues;

  /** Creates an aggregator whose buffers may hold {@code maxValues} keys, or a heap share if 0. */
  public LongKeyCountAggregator(long maxValues) {
    if (maxValues < 0) {
      throw new IllegalArgumentException("maxValues must be 0 or positive, got " + maxValues);
    }
    this.maxValues = maxValues;
  }

  /**
   * Returns the aggregate applied to {@code key}: a struct of {@code distinctCount} and
   * {@code repeatedCount}. Callers over py4j use this to avoid Scala's varargs from Python.
   */
  public static Column countKeys(Column key, long maxValues) {
    return functions.udaf(new LongKeyCountAggregator(maxValues), Encoders.LONG()).apply(key);
  }

  @Override
  public LongKeyBuffer zero() {
    long limit = maxValues;
    if (limit == 0) {
      limit = Runtime.getRuntime().maxMemory() / HEAP_SHARE_DIVISOR / Long.BYTES;
    }
    return new LongKeyBuffer(limit);
  }

  @Override
  public LongKeyBuffer reduce(LongKeyBuffer buffer, Long key) {
    if (key != null) {
      buffer.add(key);
    }
    return buffer;
  }

  @Override
  public LongKeyBuffer merge(LongKeyBuffer target, LongKeyBuffer source) {
    target.addAll(source);
    return target;
  }

  @Override
  public KeyCounts finish(LongKeyBuffer buffer) {
    if (buffer.overflowed()) {
      return new KeyCounts(null, null);
    }
    return new KeyCounts(buffer.distinctCount(), buffer.repeatedCount());
  }

  @Override
  public Encoder<LongKeyBuffer> bufferEncoder() {
    return Encoders.javaSerialization(LongKeyBuffer.class);
  }

  @Override
  public Encoder<KeyCounts> outputEncoder() {
    return Encoders.bean(KeyCounts.class);
  }
}
