import { Notification } from '@jupyterlab/apputils';
import { TranslationBundle } from '@jupyterlab/translation';
import { ISignal, Signal } from '@lumino/signaling';

import { Contents } from '@jupyterlab/services';

import { reportPath } from './reports';
import { postAPI, requestAPI, segment } from './request';
import { explain, toast } from './toast';
import { INbmciModel, Nbmci } from './tokens';

/** How often the panel re-reads the registry while it is visible. */
const REFRESH_MS = 5000;
/** How soon it re-reads while a shown version's servability is still being checked. */
const CHECKING_MS = 1500;
/** A version committed this recently with no verdict yet is probably being checked. */
const RECENT_COMMIT_MS = 60_000;
/** How often a running CI job is polled, and for how long at most. */
const JOB_POLL_MS = 1000;
const JOB_POLL_LIMIT = 3600;

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

/** Show an error from the server (or the network) as a notification. */
export function notifyError(error: unknown): void {
  const { message, hint } = error as { message?: string; hint?: string };
  const text = String(message ?? error);
  Notification.error(hint ? `${text} ${hint}` : text, { autoClose: 8000 });
}

/**
 * The registry as the panel shows it. Reads go through the REST API; every change emits
 * `changed`, and the views re-render from this state only.
 */
export class NbmciModel implements INbmciModel {
  constructor(
    private readonly _open: (path: string) => Promise<unknown>,
    private readonly _contents: Contents.IManager,
    private readonly _trans: TranslationBundle
  ) {}

  get changed(): ISignal<INbmciModel, void> {
    return this._changed;
  }

  get models(): ReadonlyArray<Nbmci.IModelSummary> {
    return this._models;
  }

  get loaded(): boolean {
    return this._loaded;
  }

  get offline(): string | null {
    return this._offline;
  }

  detail(name: string): Nbmci.IModel | undefined {
    return this._details.get(name);
  }

  isExpanded(name: string): boolean {
    return this._expanded.has(name);
  }

  busy(name: string): string | null {
    return this._busy.get(name) ?? null;
  }

  toggle(name: string): void {
    if (this._expanded.delete(name)) {
      this._changed.emit();
      return;
    }
    this._expanded.add(name);
    this._changed.emit();
    void this._loadDetail(name).catch(notifyError);
  }

  /** Re-read the list and every expanded model; errors become notifications. */
  async refresh(): Promise<void> {
    try {
      await this._refresh();
    } catch (error) {
      notifyError(error);
    }
  }

  setActive(active: boolean): void {
    if (active && this._timer === null) {
      this._schedule(0);
    } else if (!active && this._timer !== null) {
      window.clearTimeout(this._timer);
      this._timer = null;
    }
  }

  isInputsShown(name: string, version: number): boolean {
    return this._inputsShown.has(versionKey(name, version));
  }

  toggleInputs(name: string, version: number): void {
    const key = versionKey(name, version);
    if (this._inputsShown.delete(key)) {
      this._changed.emit();
      return;
    }
    this._inputsShown.add(key);
    this._changed.emit();
    const known = this._versionDetails.get(key);
    if (known === undefined || known instanceof Error) {
      void this._loadVersionDetail(name, version);
    }
  }

  versionDetail(name: string, version: number): Nbmci.IVersionDetail | Error | undefined {
    return this._versionDetails.get(versionKey(name, version));
  }

  async runCI(name: string, version: number): Promise<void> {
    const trans = this._trans;
    await this._act(
      name,
      trans.__('Starting CI…'),
      trans.__('run CI on %1 v%2 failed', name, version),
      async () => {
        let job = await postAPI<Nbmci.IJob>(`models/${segment(name)}/ci`, { version });
        for (let i = 0; job.state === 'running' && i < JOB_POLL_LIMIT; i++) {
          this._setBusy(name, this._progress(job));
          await sleep(JOB_POLL_MS);
          job = await requestAPI<Nbmci.IJob>(`jobs/${segment(job.id)}`);
          if (i % 3 === 2) {
            await this._loadDetail(name);
          }
        }
        await this._refresh();
        this._reportJob(name, version, job);
      }
    );
  }

  async publish(name: string, version: number, force = false): Promise<void> {
    const trans = this._trans;
    await this._act(
      name,
      force ? trans.__('Publishing v%1 with force…', version) : trans.__('Publishing v%1…', version),
      force
        ? trans.__('publish %1 v%2 with force failed', name, version)
        : trans.__('publish %1 v%2 failed', name, version),
      async () => {
        const moved = await postAPI<Nbmci.IAliasMove>(`models/${segment(name)}/publish`, {
          version,
          force
        });
        await this._refresh();
        const was =
          moved.previous === null || moved.previous === moved.version
            ? ''
            : trans.__('; production was v%1', moved.previous);
        toast(
          'success',
          moved.forced
            ? trans.__(
                'Published %1 v%2 with force, past its CI gates (the override is recorded)%3',
                name,
                moved.version,
                was
              )
            : trans.__('Published %1 v%2%3', name, moved.version, was),
          null,
          trans
        );
      }
    );
  }

  async rollback(name: string): Promise<void> {
    const trans = this._trans;
    await this._act(name, trans.__('Rolling back…'), trans.__('roll back %1 failed', name), async () => {
      const moved = await postAPI<Nbmci.IAliasMove>(`models/${segment(name)}/rollback`);
      await this._refresh();
      const from = moved.previous === null ? '' : trans.__(' (from v%1)', moved.previous);
      toast('success', trans.__('Rolled %1 back to v%2%3', name, moved.version, from), null, trans);
    });
  }

  async openReport(name: string, version: number, notebook: string): Promise<void> {
    const trans = this._trans;
    await this._act(
      name,
      trans.__('Opening report…'),
      trans.__('open the CI report of %1 v%2 failed', name, version),
      async () => {
        const path = reportPath(name, version, notebook);
        await this._contents.get(path, { content: false }); // refused here, not in the tab
        await this._open(path);
        toast(
          'success',
          trans.__('Opened the CI report of %1 v%2 (%3, read-only)', name, version, notebook),
          null,
          trans
        );
      }
    );
  }

  /**
   * Run one action on a model: its buttons are disabled until it ends, and it ends in a
   * toast (a refusal reads `failed` then the server's reason and the panel's hint).
   */
  private async _act(
    name: string,
    label: string,
    failed: string,
    action: () => Promise<void>
  ) {
    if (this._busy.has(name)) {
      return;
    }
    this._setBusy(name, label);
    try {
      await action();
    } catch (error) {
      toast('error', failed, explain(error), this._trans);
    } finally {
      this._busy.delete(name);
      this._changed.emit();
    }
  }

  private _setBusy(name: string, label: string): void {
    this._busy.set(name, label);
    this._changed.emit();
  }

  private _progress(job: Nbmci.IJob): string {
    const step = job.total ? ` ${job.done}/${job.total}` : '';
    return this._trans.__('CI%1: %2', step, job.message ?? this._trans.__('running…'));
  }

  private _reportJob(name: string, version: number, job: Nbmci.IJob): void {
    const trans = this._trans;
    const why = job.reason ?? job.error ?? null;
    switch (job.state) {
      case 'passed':
        toast('success', trans.__('CI passed for %1 v%2', name, version), null, trans);
        break;
      case 'failed':
        toast('warning', trans.__('CI failed for %1 v%2', name, version), why, trans);
        break;
      case 'running':
        toast('info', trans.__('CI of %1 v%2 is still running; refresh later', name, version), null, trans);
        break;
      case 'cancelled':
        toast('info', trans.__('CI of %1 v%2 was cancelled', name, version), why, trans);
        break;
      default:
        toast('error', trans.__('CI of %1 v%2 had errors', name, version), why, trans);
    }
  }

  /**
   * Poll after `delay`, then again every REFRESH_MS, or every CHECKING_MS while a shown
   * version's servability is being checked. One timer; `setActive(false)` ends the chain.
   */
  private _schedule(delay: number): void {
    const timer = window.setTimeout(async () => {
      await this._poll();
      if (this._timer === timer) {
        this._schedule(this._isChecking() ? CHECKING_MS : REFRESH_MS);
      }
    }, delay);
    this._timer = timer;
  }

  /**
   * Whether an expanded model has a version whose servability check may still be running:
   * `checking`, or `unknown` and committed moments ago (a commit made in a kernel is checked
   * in the kernel's process, and the server sees no verdict until it is recorded).
   */
  private _isChecking(): boolean {
    const now = Date.now();
    return [...this._expanded].some(name =>
      this._details.get(name)?.versions.some(v => {
        const status = v.servability?.status;
        return (
          status === 'checking' ||
          (status === 'unknown' && now - Date.parse(v.created_at) < RECENT_COMMIT_MS)
        );
      })
    );
  }

  /** The periodic refresh: failures show in the panel, not as a stream of notifications. */
  private async _poll(): Promise<void> {
    if (this._polling || document.hidden) {
      return;
    }
    this._polling = true;
    try {
      await this._refresh();
    } catch (error) {
      const { message, hint } = error as { message?: string; hint?: string };
      this._offline = [message ?? String(error), hint].filter(Boolean).join(' ');
      this._changed.emit();
    } finally {
      this._polling = false;
    }
  }

  private async _refresh(): Promise<void> {
    const models = await requestAPI<Nbmci.IModelSummary[]>('models');
    this._models = models;
    this._loaded = true;
    this._offline = null;
    const names = new Set(models.map(m => m.name));
    for (const name of [...this._details.keys()]) {
      if (!names.has(name)) {
        this._details.delete(name);
      }
    }
    for (const [key, detail] of [...this._versionDetails]) {
      if (!(detail instanceof Error) && !names.has(detail.name)) {
        this._versionDetails.delete(key);
      }
    }
    this._changed.emit();
    await Promise.all([...this._expanded].filter(n => names.has(n)).map(n => this._loadDetail(n)));
  }

  private async _loadDetail(name: string): Promise<void> {
    const detail = await requestAPI<Nbmci.IModel>(`models/${segment(name)}`);
    this._details.set(name, detail);
    this._forgetReplacedVersions(detail);
    this._changed.emit();
    if (!this._polling && this._timer !== null && this._isChecking()) {
      // a check is running: look again soon rather than at the next regular poll
      window.clearTimeout(this._timer);
      this._schedule(CHECKING_MS);
    }
  }

  /** Drop fetched version details that no longer match a listed version (name reused). */
  private _forgetReplacedVersions(model: Nbmci.IModel): void {
    const listed = new Map(model.versions.map(v => [v.version, v.created_at]));
    for (const [key, detail] of [...this._versionDetails]) {
      if (
        !(detail instanceof Error) &&
        detail.name === model.name &&
        listed.get(detail.version) !== detail.created_at
      ) {
        this._versionDetails.delete(key);
        this._inputsShown.delete(key);
      }
    }
  }

  /** `GET models/{name}/versions/{n}`: the signature, shown as the version's inputs. */
  private async _loadVersionDetail(name: string, version: number): Promise<void> {
    const key = versionKey(name, version);
    if (this._loadingVersions.has(key)) {
      return;
    }
    this._loadingVersions.add(key);
    this._versionDetails.delete(key);
    this._changed.emit();
    try {
      const detail = await requestAPI<Nbmci.IVersionDetail>(
        `models/${segment(name)}/versions/${segment(version)}`
      );
      this._versionDetails.set(key, detail);
    } catch (error) {
      this._versionDetails.set(key, error instanceof Error ? error : new Error(String(error)));
    } finally {
      this._loadingVersions.delete(key);
      this._changed.emit();
    }
  }

  private _changed = new Signal<INbmciModel, void>(this);
  private _models: Nbmci.IModelSummary[] = [];
  private _loaded = false;
  private _offline: string | null = null;
  private _polling = false;
  private _timer: number | null = null;
  private _details = new Map<string, Nbmci.IModel>();
  private _expanded = new Set<string>();
  private _busy = new Map<string, string>();
  /** Keyed by `name@version`; an Error when the fetch failed (fetched again when shown). */
  private _versionDetails = new Map<string, Nbmci.IVersionDetail | Error>();
  private _loadingVersions = new Set<string>();
  private _inputsShown = new Set<string>();
}

function versionKey(name: string, version: number): string {
  return `${name}@${version}`;
}
