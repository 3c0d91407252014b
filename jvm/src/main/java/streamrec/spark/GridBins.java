package streamrec.spark;

import java.io.Serializable;

/**
 * The bin of a value on a fixed grid, the same bin as the SQL expression that
 * {@code streamrec_spark.validation.metrics.grid_index} builds, without computing a logarithm
 * for each row.
 *
 * <p>That expression computes {@code floor(f(x - lower) / span * bins)}, clamped to
 * {@code [0, bins - 1]}, where {@code f} is {@code log1p} on a log grid and the identity on a
 * linear one. Measured at 10M rows, the expression added about 20 ns of task CPU a row, most of
 * it in {@code log1p}. The constructor instead finds, for each bin, the smallest double that the
 * expression puts in that bin or above, by bisection over the doubles and with the expression
 * itself. A row then needs a table lookup on its exponent and a comparison or two.
 *
 * <p>The thresholds give the expression's own bins as long as the expression does not decrease
 * as {@code x} grows. Division and multiplication by a positive constant, correctly rounded,
 * never decrease. NOTE: that {@code StrictMath.log1p} never decreases is assumed, not proven;
 * it gives the same results on every platform, and the tests compare both sides at and around
 * every edge.
 */
public final class GridBins implements Serializable {
  private static final long serialVersionUID = 1L;

  // Slots of the log grid's hint table: the exponent and the top SLOT_MANTISSA_BITS bits of the
  // mantissa of (x - lower), so that a slot spans a ratio of at most 17/16.
  private static final int SLOT_MANTISSA_BITS = 4;
  private static final int SLOT_SHIFT = 52 - SLOT_MANTISSA_BITS;
  private static final int MAX_SLOTS = 1 << 14;

  private final double lower;
  private final double upper;
  private final int bins;
  private final boolean log;
  private final double span;
  // thresholds[i] is the smallest x in [lower, upper) in bin i or above; thresholds[0] = lower.
  private final double[] thresholds;
  // Log grid: the bin of the smallest x of each slot, from slot firstSlot on.
  private final int[] hints;
  private final long firstSlot;

  /**
   * @param span the divisor of the expression, exactly as it computes it: {@code log1p(upper -
   *     lower)} on a log grid, {@code upper - lower} on a linear one
   */
  public GridBins(double lower, double upper, int bins, boolean log, double span) {
    if (bins <= 0 || !(lower < upper) || !(span > 0) || Double.isInfinite(upper - lower)) {
      throw new IllegalArgumentException(
          "a grid needs bins > 0 and finite lower < upper and span > 0, got bins " + bins
              + ", lower " + lower + ", upper " + upper + ", span " + span);
    }
    this.lower = lower;
    this.upper = upper;
    this.bins = bins;
    this.log = log;
    this.span = span;
    this.thresholds = new double[bins];
    thresholds[0] = lower;
    for (int bin = 1; bin < bins; bin++) {
      thresholds[bin] = smallestAtOrAbove(bin);
    }
    if (log) {
      double smallest = bins > 1 ? thresholds[1] - lower : upper - lower;
      firstSlot = slot(Math.max(smallest, Double.MIN_NORMAL));
      int slots = (int) Math.min(MAX_SLOTS, slot(upper - lower) - firstSlot + 1);
      hints = new int[slots];
      for (int i = 0; i < slots; i++) {
        hints[i] = search(lower + Double.longBitsToDouble((firstSlot + i) << SLOT_SHIFT));
      }
    } else {
      firstSlot = 0;
      hints = null;
    }
  }

  /** Returns the number of bins. */
  public int bins() {
    return bins;
  }

  /** Returns the bin of {@code x} in [0, bins), or -1 for NaN, which has no bin. */
  public int bin(double x) {
    if (x < lower) {
      return 0;
    }
    if (x >= upper) {
      return bins - 1;
    }
    if (x != x) {
      return -1;
    }
    int bin = hint(x - lower);
    while (bin + 1 < bins && x >= thresholds[bin + 1]) {
      bin++;
    }
    while (bin > 0 && x < thresholds[bin]) {
      bin--;
    }
    return bin;
  }

  private int hint(double offset) {
    if (!log) {
      return (int) Math.min(bins - 1, Math.max(0, offset / span * bins));
    }
    if (!(offset > 0)) {
      return 0;
    }
    long index = slot(offset) - firstSlot;
    if (index < 0) {
      return 0;
    }
    return hints[(int) Math.min(index, hints.length - 1)];
  }

  private static long slot(double positive) {
    return Double.doubleToRawLongBits(positive) >>> SLOT_SHIFT;
  }

  /** Computes the grid expression for x in [lower, upper), before clamping, as Spark does. */
  private long expression(double x) {
    double position = log ? StrictMath.log1p(x - lower) / span : (x - lower) / span;
    return (long) Math.floor(position * bins);
  }

  private int clamped(double x) {
    return (int) Math.min(bins - 1, Math.max(0, expression(x)));
  }

  /** Returns the smallest x in [lower, upper) whose clamped bin is at least {@code bin}. */
  private double smallestAtOrAbove(int bin) {
    long low = ordered(lower);
    long high = ordered(upper);
    // Invariant: the bin of low's double is below bin; high's double is at or above it, or is
    // upper itself.
    if (clamped(lower) >= bin) {
      return lower;
    }
    // The distance between the ordered longs of a negative and a positive double can exceed
    // Long.MAX_VALUE, so it is read as unsigned.
    while (Long.compareUnsigned(high - low, 1) > 0) {
      long middle = low + ((high - low) >>> 1);
      if (clamped(fromOrdered(middle)) >= bin) {
        high = middle;
      } else {
        low = middle;
      }
    }
    return fromOrdered(high);
  }

  private int search(double x) {
    int bin = 0;
    while (bin + 1 < bins && x >= thresholds[bin + 1]) {
      bin++;
    }
    return bin;
  }

  /** Maps doubles to longs in the same order, -0.0 just below 0.0. */
  private static long ordered(double x) {
    long bits = Double.doubleToRawLongBits(x);
    return bits ^ ((bits >> 63) & Long.MAX_VALUE);
  }

  private static double fromOrdered(long ordered) {
    return Double.longBitsToDouble(ordered ^ ((ordered >> 63) & Long.MAX_VALUE));
  }
}
