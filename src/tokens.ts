import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

/**
 * The shapes of the nbmci REST API (`{baseUrl}nbmci/api/`), as the panel reads them.
 */
export namespace Nbmci {
  export type Aliases = { [alias: string]: number };
  export type Metrics = { [name: string]: number | string | null };

  /** One row of `GET models`. */
  export interface IModelSummary {
    name: string;
    versions: number;
    latest: number | null;
    created_at: string;
    updated_at: string;
    aliases: Aliases;
  }

  /** One executed evaluation notebook of a CI run. */
  export interface INotebookRun {
    notebook: string;
    status: string;
    output_digest: string | null;
    error: { reason?: string; [key: string]: unknown } | null;
    cached: boolean;
  }

  export type CiStatus = 'passed' | 'failed' | 'error';

  export interface ICiRun {
    status: CiStatus;
    metrics: Metrics;
    gates: unknown[];
    started_at: string;
    duration: number;
    notebooks: INotebookRun[];
  }

  export type ServabilityStatus = 'servable' | 'not servable' | 'checking' | 'unknown';

  /**
   * Whether a version loads from the store alone and reproduces its recorded outputs;
   * `checking` while the check started at commit runs.
   */
  export interface IServability {
    status: ServabilityStatus;
    reason: string | null;
    hint: string | null;
    /** Where the verdict was reached: commit, ci, publish or check. */
    where: string | null;
    seconds: number | null;
    checked_at: string | null;
  }

  /** One version in `GET models/{name}`, newest first. */
  export interface IVersion {
    version: number;
    ref: string;
    message: string | null;
    created_at: string;
    aliases: string[];
    metrics: Metrics;
    model: { class: string; format: string; trusted: boolean };
    ci: ICiRun | null;
    /** Absent from servers older than servability checks. */
    servability?: IServability;
  }

  export type ColumnType =
    | 'float'
    | 'integer'
    | 'nullable_integer'
    | 'boolean'
    | 'string'
    | 'category'
    | 'datetime'
    | 'timedelta'
    | 'object';

  /** One input column as training saw it. */
  export interface ISchemaColumn {
    name: string;
    type: ColumnType | string;
    dtype: string;
    /** It had missing values in training. */
    nullable: boolean;
    categories?: unknown[];
    ordered?: boolean;
  }

  /** `signature.schema` (`nbmci.schema/1`): the input's kind and its columns. */
  export interface IInputSchema {
    format: string;
    kind: 'frame' | 'matrix' | 'series' | 'vector' | 'list' | string;
    columns: ISchemaColumn[];
  }

  export interface IRecordedOutput {
    type: string;
    shape: number[];
    values: unknown;
  }

  /** A version's signature; versions older than schemas have `inputs` only. */
  export interface ISignature {
    inputs?: { name: string; dtype: string }[];
    schema?: IInputSchema;
    outputs_recorded?: { [method: string]: IRecordedOutput };
    [key: string]: unknown;
  }

  /** `GET models/{name}/versions/{n}`: one version with its signature and lineage. */
  export interface IVersionDetail extends IVersion {
    name: string;
    signature: ISignature;
    lineage: { [key: string]: unknown };
  }

  /** Where `nbmci rollback NAME` would move production: from `from` back to `to`. */
  export interface IRollback {
    from: number;
    to: number;
  }

  /** `GET models/{name}`. */
  export interface IModel {
    name: string;
    aliases: Aliases;
    versions: IVersion[];
    /** Null when production has no earlier version; absent from older servers. */
    rollback?: IRollback | null;
  }

  /** `GET models/{name}/versions/{n}/notebooks/{notebook}`: an executed notebook of CI. */
  export interface IExecutedNotebook {
    name: string;
    version: number;
    ref: string;
    notebook: string;
    status: string;
    digest: string | null;
    created_at: string | null;
    content: { cells: unknown[]; [key: string]: unknown };
  }

  export type JobState = 'running' | 'passed' | 'failed' | 'error' | 'cancelled';

  /** A background job (`POST models/{name}/ci` answers one; `GET jobs/{id}` follows it). */
  export interface IJob {
    id: string;
    kind: string;
    ref: string;
    state: JobState;
    done: number;
    total: number;
    message: string | null;
    result: unknown;
    error: string | null;
    hint?: string | null;
    /** Why it did not pass, as a clause (no reference in CLI form, no command). */
    reason?: string | null;
  }

  /** `POST models/{name}/publish` and `POST models/{name}/rollback`. */
  export interface IAliasMove {
    name: string;
    alias: string;
    previous: number | null;
    version: number;
    forced: boolean;
    rolled_back: boolean;
    ref: string;
  }
}

/**
 * The panel's state: the model list, the expanded models' versions, and running actions.
 */
export interface INbmciModel {
  readonly changed: ISignal<INbmciModel, void>;
  readonly models: ReadonlyArray<Nbmci.IModelSummary>;
  readonly loaded: boolean;
  readonly offline: string | null;
  detail(name: string): Nbmci.IModel | undefined;
  isExpanded(name: string): boolean;
  /** The label of the action running on a model, or null when it is idle. */
  busy(name: string): string | null;
  toggle(name: string): void;
  refresh(): Promise<void>;
  runCI(name: string, version: number): Promise<void>;
  /** Publish; `force` skips the CI gates (recorded), never the servability check. */
  publish(name: string, version: number, force?: boolean): Promise<void>;
  rollback(name: string): Promise<void>;
  openReport(name: string, version: number, notebook: string): Promise<void>;
  /** Whether a version's inputs are shown (its details are fetched when first shown). */
  isInputsShown(name: string, version: number): boolean;
  toggleInputs(name: string, version: number): void;
  /** A version's details once fetched, or the error that fetching them ended in. */
  versionDetail(name: string, version: number): Nbmci.IVersionDetail | Error | undefined;
  /** Poll the server while the panel is visible. */
  setActive(active: boolean): void;
}

export const INbmciModel = new Token<INbmciModel>(
  'nbmci:INbmciModel',
  'The nbmci model registry as the lab sees it over the REST API.'
);
