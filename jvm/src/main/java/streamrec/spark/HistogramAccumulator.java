package streamrec.spark;

import org.apache.spark.sql.SparkSession;

/**
 * Counts the rows in each bin of a histogram while another query reads them: the query
 * evaluates {@link #tap(Column)} on each row's bin index. A bin index is an int in [0, bins);
 * null indexes are not counted.
 *
 * <p>A declarative aggregate needs one conditional count per bin, evaluated on every row; this
 * is one array increment per row.
 */
public final class HistogramAccumulator extends PartitionAccumulator<Integer, long[]> {
  private static final long serialVersionUID = 1L;

  private final int bins;

  HistogramAccumulator(int bins) {
    if (bins <= 0) {
      throw new IllegalArgumentException("bins must be positive, got " + bins);
    }
    this.bins = bins;
  }

  /** Creates an accumulator of {@code bins} bins, registered with the session's context. */
  public static HistogramAccumulator register(SparkSession spark, int bins) {
    HistogramAccumulator accumulator = new HistogramAccumulator(bins);
    spark.sparkContext().register(accumulator);
    return accumulator;
  }

  /** Returns the count of each bin over all partitions. */
  public long[] counts() {
    long[] total = new long[bins];
    for (Part<long[]> part : driverParts()) {
      for (int i = 0; i < bins; i++) {
        total[i] += part.state[i];
      }
    }
    return total;
  }

  @Override
  protected long[] newState() {
    return new long[bins];
  }

  @Override
  protected void record(long[] state, Integer index) {
    count(state, index);
  }

  /** Records one bin index; the generated code of {@link TapExpression} calls this for each row. */
  public void recordBin(int bin) {
    count(nextState(), bin);
  }

  private void count(long[] state, int bin) {
    if (bin < 0 || bin >= bins) {
      throw new IllegalArgumentException(
          "histogram bin index " + bin + " is outside [0, " + bins + ")");
    }
    state[bin]++;
  }

  @Override
  protected long[] finish(long[] state) {
    return state;
  }

  @Override
  protected HistogramAccumulator emptyCopy() {
    return new HistogramAccumulator(bins);
  }
}
