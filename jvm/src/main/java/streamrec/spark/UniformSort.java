package streamrec.spark;

import java.util.Arrays;

/**
 * Sorts 64-bit values that are spread evenly over their range, such as hashes, in unsigned
 * order: one counting pass distributes them to buckets by their top bits, and each bucket,
 * about 16 values on average, is then sorted on its own. On even values that is two passes over
 * memory instead of the log(n) passes of a comparison sort. Skewed values are still sorted
 * correctly, only slower.
 */
final class UniformSort {
  /** Below this many values a comparison sort is used, which needs no extra array. */
  private static final int SMALL = 4096;
  private static final int MAX_BUCKET_BITS = 24;
  private static final int INSERTION_LIMIT = 48;

  private UniformSort() {}

  /** Sorts {@code values[0, length)} in unsigned order. */
  static void sort(long[] values, int length) {
    if (length < SMALL) {
      sortMixedSigns(values, length);
      return;
    }
    int bits = Math.min(MAX_BUCKET_BITS, 31 - Integer.numberOfLeadingZeros(length / 16));
    int shift = 64 - bits;
    int[] next = new int[(1 << bits) + 1];
    for (int i = 0; i < length; i++) {
      next[(int) (values[i] >>> shift) + 1]++;
    }
    for (int b = 1; b < next.length; b++) {
      next[b] += next[b - 1];
    }
    long[] sorted = new long[length];
    for (int i = 0; i < length; i++) {
      long value = values[i];
      sorted[next[(int) (value >>> shift)]++] = value;
    }
    // next[b] is now the end of bucket b, which is where bucket b + 1 starts.
    int start = 0;
    for (int b = 0; b < next.length - 1; b++) {
      int end = next[b];
      sortBucket(sorted, start, end);
      start = end;
    }
    System.arraycopy(sorted, 0, values, 0, length);
  }

  /** Sorts a bucket; its values share their top bits, so signed order is unsigned order. */
  private static void sortBucket(long[] values, int from, int to) {
    if (to - from > INSERTION_LIMIT) {
      Arrays.sort(values, from, to);
      return;
    }
    for (int i = from + 1; i < to; i++) {
      long value = values[i];
      int j = i - 1;
      while (j >= from && values[j] > value) {
        values[j + 1] = values[j];
        j--;
      }
      values[j + 1] = value;
    }
  }

  /** Sorts {@code values[0, length)} in unsigned order with a comparison sort. */
  private static void sortMixedSigns(long[] values, int length) {
    for (int i = 0; i < length; i++) {
      values[i] ^= Long.MIN_VALUE;
    }
    Arrays.sort(values, 0, length);
    for (int i = 0; i < length; i++) {
      values[i] ^= Long.MIN_VALUE;
    }
  }
}
