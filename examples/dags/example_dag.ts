import { dag } from 'kiln';

/**
 * The 12-task DAG of "Profiling the Airflow Scheduler" (Ash Berlin-Taylor, 2019):
 * print_date1 -> print_date2 -> print_date3 -> {print_date4..8}, print_date8 -> {print_date9..12}.
 * Tasks do no work, so a run measures the scheduler and executor alone.
 */
export default dag({ id: 'example_dag', schedule: null, maxActiveTasks: 16 }, (d) => {
  const printDate = async () => new Date().toISOString();
  const t = Array.from({ length: 12 }, (_, i) => d.task(`print_date${i + 1}`, printDate));
  d.chain(t[0]!, t[1]!, t[2]!, [t[3]!, t[4]!, t[5]!, t[6]!, t[7]!]);
  d.chain(t[7]!, [t[8]!, t[9]!, t[10]!, t[11]!]);
});
