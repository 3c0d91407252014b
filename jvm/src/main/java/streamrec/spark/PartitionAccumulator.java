package streamrec.spark;

import java.io.Serializable;
import java.util.Collections;
import java.util.Map;
import java.util.TreeMap;
import org.apache.spark.TaskContext;
import org.apache.spark.sql.Column;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.util.AccumulatorV2;
import org.apache.spark.util.TaskCompletionListener;

/**
 * An accumulator that keeps one state per input partition instead of one running total.
 *
 * <p>Spark applies the accumulator updates of a transformation once per successful task, so a
 * retried stage or a speculative copy of a task would add the same rows twice to a plain
 * accumulator. Here a task's state replaces the state of its partition, and the input of a
 * partition is the same on every attempt, so the merged value counts each partition once.
 *
 * <p>A task fills its state row by row and publishes it when the task completes, through a
 * completion listener. Until then the copy reads as zero and serializes without the state, so
 * an executor heartbeat that reports running tasks never reads a state that is still changing.
 * Use one accumulator in one stage of one query: partition numbers are per stage.
 *
 * @param <IN> the value a row records
 * @param <S> the state of one partition
 */
public abstract class PartitionAccumulator<IN, S extends Serializable>
    extends AccumulatorV2<IN, Map<Integer, PartitionAccumulator.Part<S>>> {
  private static final long serialVersionUID = 1L;

  /** The published state of one partition and the number of values it recorded. */
  public static final class Part<S extends Serializable> implements Serializable {
    private static final long serialVersionUID = 1L;
    final S state;
    final long recorded;

    Part(S state, long recorded) {
      this.state = state;
      this.recorded = recorded;
    }
  }

  // Task side. A row evaluated on the driver, outside any task, has no completion listener;
  // its state stays in `running` and the driver-side readers include it.
  private transient S running;
  private transient long runningRecorded;
  private volatile Part<S> published;
  private int partition = -1;

  // Driver side: the state of each partition, from the last successful task that read it.
  private final TreeMap<Integer, Part<S>> parts = new TreeMap<>();

  /** Returns an empty state for a task. */
  protected abstract S newState();

  /** Records one non-null value in {@code state}. */
  protected abstract void record(S state, IN value);

  /** Prepares a finished task's state for sending; runs once, in the task's thread. */
  protected abstract S finish(S state);

  /** Returns a new accumulator with the same settings and no state. */
  protected abstract PartitionAccumulator<IN, S> emptyCopy();

  /** Returns the type of the column that {@link #tap} records. */
  abstract DataType tapType();

  /**
   * Returns the name of the public method that the generated code of a tap calls for each
   * non-null value: it takes the Java primitive of {@link #tapType} and returns whether it
   * recorded the value.
   */
  abstract String tapMethod();

  /** Records a non-null boxed value of {@link #tapType}, as {@link #tapMethod} does. */
  abstract boolean recordBoxed(Object value);

  /**
   * Returns a column that records {@code input} here and is true, or null for a null input or
   * a value not recorded. The query must use the column (count it, for instance) for Spark to
   * evaluate it. The input column's type must be {@link #tapType}.
   */
  public final Column tap(Column input) {
    return new Column(new TapExpression(input.expr(), this));
  }

  @Override
  public final boolean isZero() {
    return published == null && parts.isEmpty() && running == null;
  }

  @Override
  public final PartitionAccumulator<IN, S> copyAndReset() {
    return emptyCopy();
  }

  @Override
  public final PartitionAccumulator<IN, S> copy() {
    PartitionAccumulator<IN, S> copy = emptyCopy();
    copy.parts.putAll(parts);
    copy.published = published;
    copy.partition = partition;
    return copy;
  }

  @Override
  public final void reset() {
    parts.clear();
    published = null;
    partition = -1;
    running = null;
    runningRecorded = 0;
  }

  @Override
  public final void add(IN value) {
    if (value != null) {
      record(nextState(), value);
    }
  }

  /** Returns this task's state, started on first use, and counts one more recorded value. */
  protected final S nextState() {
    if (running == null) {
      start();
    }
    runningRecorded++;
    return running;
  }

  private void start() {
    running = newState();
    runningRecorded = 0;
    TaskContext context = TaskContext.get();
    if (context != null) {
      partition = context.partitionId();
      context.addTaskCompletionListener((TaskCompletionListener) finished -> publish());
    }
  }

  private void publish() {
    if (running != null) {
      published = new Part<>(finish(running), runningRecorded);
      running = null;
    }
  }

  @Override
  @SuppressWarnings("unchecked")
  public final void merge(AccumulatorV2<IN, Map<Integer, Part<S>>> other) {
    if (!(other instanceof PartitionAccumulator)) {
      throw new UnsupportedOperationException(
          "cannot merge " + other.getClass().getName() + " into " + getClass().getName());
    }
    PartitionAccumulator<IN, S> source = (PartitionAccumulator<IN, S>) other;
    parts.putAll(source.parts);
    Part<S> part = source.published;
    if (part != null) {
      parts.put(source.partition, part);
    }
    afterMerge(parts);
  }

  /**
   * Runs on the driver after each merge, with the states of all partitions so far. A subclass
   * may replace states here, for instance to drop them once they exceed a memory limit.
   */
  protected void afterMerge(TreeMap<Integer, Part<S>> merged) {}

  /** Returns the published state of each partition; cheap, so Spark may call it at any time. */
  @Override
  public final Map<Integer, Part<S>> value() {
    return Collections.unmodifiableMap(parts);
  }

  /** Returns the states to combine on the driver, including rows evaluated outside a task. */
  protected final Iterable<Part<S>> driverParts() {
    if (running == null) {
      return parts.values();
    }
    TreeMap<Integer, Part<S>> all = new TreeMap<>(parts);
    all.put(Integer.MIN_VALUE, new Part<>(finish(running), runningRecorded));
    return all.values();
  }

  /** Returns the number of values recorded over all partitions, to check against a row count. */
  public final long recorded() {
    long total = 0;
    for (Part<S> part : driverParts()) {
      total += part.recorded;
    }
    return total;
  }
}
