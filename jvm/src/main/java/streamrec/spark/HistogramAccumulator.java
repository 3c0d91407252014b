package streamrec.spark;

import org.apache.spark.sql.SparkSession;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;

/**
 * Counts the rows in each bin of a histogram while another query reads them: the query
 * evaluates {@link #tap(Column)} on each row. The input is either a bin index, an INT in
 * [0, bins), or with a {@link GridBins} a DOUBLE that the grid puts in its bin. Null inputs and
 * NaN are not counted.
 *
 * <p>A declarative aggregate needs one conditional count per bin, evaluated on every row; this
 * is one array increment per row.
 */
public final class HistogramAccumulator extends PartitionAccumulator<Number, long[]> {
  private static final long serialVersionUID = 1L;

  private final int bins;
  // Null when the input is a bin index.
  private final GridBins grid;

  HistogramAccumulator(int bins, GridBins grid) {
    if (bins <= 0) {
      throw new IllegalArgumentException("bins must be positive, got " + bins);
    }
    this.bins = bins;
    this.grid = grid;
  }

  /** Creates an accumulator of bin indexes in [0, bins), registered with the session's context. */
  public static HistogramAccumulator register(SparkSession spark, int bins) {
    return registered(spark, new HistogramAccumulator(bins, null));
  }

  /** Creates an accumulator of DOUBLE values on {@code grid}, registered with the session's context. */
  public static HistogramAccumulator register(SparkSession spark, GridBins grid) {
    return registered(spark, new HistogramAccumulator(grid.bins(), grid));
  }

  private static HistogramAccumulator registered(SparkSession spark, HistogramAccumulator accumulator) {
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
  protected void record(long[] state, Number value) {
    if (grid == null) {
      count(state, value.intValue());
      return;
    }
    int bin = grid.bin(value.doubleValue());
    if (bin < 0) {
      throw new IllegalArgumentException("NaN has no bin; pass null instead");
    }
    state[bin]++;
  }

  @Override
  DataType tapType() {
    return grid == null ? DataTypes.IntegerType : DataTypes.DoubleType;
  }

  @Override
  String tapMethod() {
    return grid == null ? "recordBin" : "recordValue";
  }

  @Override
  boolean recordBoxed(Object value) {
    return grid == null ? recordBin((Integer) value) : recordValue((Double) value);
  }

  /** Records one bin index; the generated code of {@link TapExpression} calls this for each row. */
  public boolean recordBin(int bin) {
    count(nextState(), bin);
    return true;
  }

  /**
   * Records one value on the grid and returns true, or returns false for NaN; the generated
   * code of {@link TapExpression} calls this for each row.
   */
  public boolean recordValue(double value) {
    int bin = grid.bin(value);
    if (bin < 0) {
      return false;
    }
    nextState()[bin]++;
    return true;
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
    return new HistogramAccumulator(bins, grid);
  }
}
