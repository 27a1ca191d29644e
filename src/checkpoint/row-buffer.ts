/**
 * Rows of one checkpoint table buffered in memory and written in multi-row INSERTs
 * (rank-store.ts holds one per table).
 */
import type Database from 'better-sqlite3';

/** Rows per INSERT statement: one statement step for many small-file rows (SQLite allows 32766 parameters). */
const ROWS_PER_INSERT = 64;

/** Rows taken out of a buffer: the flat values and how many rows they hold. */
export type Taken = { values: unknown[]; rows: number };

/**
 * Rows of one table, buffered as one flat array of values and written with multi-row
 * INSERTs: per row, a push of its values instead of an array, a statement step and a
 * crossing into the binding (which together cost more than the b-tree append).
 */
export class RowBuffer {
  private values: unknown[] = [];
  rows = 0;
  private readonly stmts = new Map<number, Database.Statement>();

  /** `db`: the store's connection, opened by then (rows are written only inside its transactions). */
  constructor(private readonly db: () => Database.Database, private readonly table: string, private readonly columns: string[]) {}

  /** The array to push one row's values onto, in column order (no per-row array). */
  next(): unknown[] {
    this.rows++;
    return this.values;
  }

  private stmt(rows: number): Database.Statement {
    let st = this.stmts.get(rows);
    if (!st) {
      const one = `(${this.columns.map(() => '?').join(',')})`;
      st = this.db().prepare(`INSERT INTO ${this.table} (${this.columns.join(', ')}) VALUES ${Array(rows).fill(one).join(',')}`);
      this.stmts.set(rows, st);
    }
    return st;
  }

  /** Hand the buffered rows over (the buffer is empty afterwards). */
  take(): Taken {
    const t = { values: this.values, rows: this.rows };
    this.values = [];
    this.rows = 0;
    return t;
  }

  /** Insert rows taken earlier; call inside a transaction. */
  write({ values, rows }: Taken): void {
    const n = this.columns.length;
    for (let r = 0; r < rows; r += ROWS_PER_INSERT) {
      const k = Math.min(ROWS_PER_INSERT, rows - r);
      this.stmt(k).run(values.slice(r * n, (r + k) * n));
    }
  }
}
