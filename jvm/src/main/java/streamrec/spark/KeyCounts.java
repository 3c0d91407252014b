package streamrec.spark;

import java.io.Serializable;

/**
 * Result of {@link KeySetAccumulator#counts()}: the number of distinct non-null keys and the number
 * of keys that occur more than once. Both are null when the keys did not fit in the memory limit.
 */
public final class KeyCounts implements Serializable {
  private static final long serialVersionUID = 1L;

  private Long distinctCount;
  private Long repeatedCount;

  public KeyCounts() {}

  KeyCounts(Long distinctCount, Long repeatedCount) {
    this.distinctCount = distinctCount;
    this.repeatedCount = repeatedCount;
  }

  public Long getDistinctCount() {
    return distinctCount;
  }

  public void setDistinctCount(Long distinctCount) {
    this.distinctCount = distinctCount;
  }

  public Long getRepeatedCount() {
    return repeatedCount;
  }

  public void setRepeatedCount(Long repeatedCount) {
    this.repeatedCount = repeatedCount;
  }
}
