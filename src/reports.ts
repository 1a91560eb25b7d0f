import { PathExt } from '@jupyterlab/coreutils';
import { Contents, ServerConnection } from '@jupyterlab/services';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI, segment } from './request';
import { Nbmci } from './tokens';

/** The drive's name: report paths read `nbmci-reports:iris@1/notebooks/iris v1 · evaluate.ipynb`. */
export const REPORTS_DRIVE = 'nbmci-reports';

/**
 * The path of `notebook` of `name@version` in the reports drive. Its last part starts with
 * `name vN · ` so that the tab says which version it is for; `parseReportPath` undoes it.
 */
export function reportPath(name: string, version: number, notebook: string): string {
  const dir = PathExt.dirname(notebook);
  const file = `${name} v${version} · ${PathExt.basename(notebook)}`;
  return `${REPORTS_DRIVE}:${name}@${version}/${dir ? `${dir}/` : ''}${file}`;
}

/** `(name, version, notebook)` of a local path of the drive, or null. */
export function parseReportPath(
  localPath: string
): { name: string; version: number; notebook: string } | null {
  const match = /^([a-z0-9][a-z0-9._-]{0,63})@([1-9][0-9]*)\/(.+)$/.exec(localPath);
  if (!match) {
    return null;
  }
  const [, name, number, rest] = match;
  const prefix = `${name} v${number} · `;
  const dir = PathExt.dirname(rest);
  const base = PathExt.basename(rest);
  if (!base.startsWith(prefix)) {
    return null;
  }
  const file = base.slice(prefix.length);
  return { name, version: Number(number), notebook: dir ? `${dir}/${file}` : file };
}

/**
 * Executed evaluation notebooks, read-only, straight from the registry over the REST API.
 *
 * Nothing is written into the Jupyter root: no copies to keep in step with the registry, and
 * no `.ipynb_checkpoints` beside them (JupyterLab checkpoints only documents it can save, and
 * this drive can save nothing).
 */
export class ReportsDrive implements Contents.IDrive {
  readonly name = REPORTS_DRIVE;
  readonly serverSettings: ServerConnection.ISettings;

  constructor(serverSettings?: ServerConnection.ISettings) {
    this.serverSettings = serverSettings ?? ServerConnection.makeSettings();
  }

  get fileChanged(): ISignal<Contents.IDrive, Contents.IChangedArgs> {
    return this._fileChanged;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  dispose(): void {
    this._isDisposed = true;
    Signal.clearData(this);
  }

  async get(localPath: string, options?: Contents.IFetchOptions): Promise<Contents.IModel> {
    const where = parseReportPath(localPath);
    if (!where) {
      return directory(localPath);
    }
    const { name, version, notebook } = where;
    const found = await requestAPI<Nbmci.IExecutedNotebook>(
      `models/${segment(name)}/versions/${version}/notebooks/${segment(notebook)}`,
      {},
      this.serverSettings
    );
    return {
      name: PathExt.basename(localPath),
      path: localPath,
      type: 'notebook',
      format: 'json',
      mimetype: 'application/x-ipynb+json',
      writable: false,
      created: found.created_at ?? '',
      last_modified: found.created_at ?? '',
      content: options?.content === false ? null : found.content,
      size: undefined,
      hash: found.digest ?? undefined
    } as Contents.IModel;
  }

  async getDownloadUrl(localPath: string): Promise<string> {
    const model = await this.get(localPath);
    const blob = new Blob([JSON.stringify(model.content, null, 1)], {
      type: 'application/x-ipynb+json'
    });
    return URL.createObjectURL(blob);
  }

  async listCheckpoints(): Promise<Contents.ICheckpointModel[]> {
    return [];
  }

  newUntitled(): Promise<Contents.IModel> {
    return readOnly();
  }
  delete(): Promise<void> {
    return readOnly();
  }
  rename(): Promise<Contents.IModel> {
    return readOnly();
  }
  save(): Promise<Contents.IModel> {
    return readOnly();
  }
  copy(): Promise<Contents.IModel> {
    return readOnly();
  }
  createCheckpoint(): Promise<Contents.ICheckpointModel> {
    return readOnly();
  }
  restoreCheckpoint(): Promise<void> {
    return readOnly();
  }
  deleteCheckpoint(): Promise<void> {
    return readOnly();
  }

  private _fileChanged = new Signal<Contents.IDrive, Contents.IChangedArgs>(this);
  private _isDisposed = false;
}

function directory(localPath: string): Contents.IModel {
  return {
    name: PathExt.basename(localPath),
    path: localPath,
    type: 'directory',
    format: 'json',
    mimetype: '',
    writable: false,
    created: '',
    last_modified: '',
    content: []
  } as unknown as Contents.IModel;
}

function readOnly<T>(): Promise<T> {
  return Promise.reject(
    new Error('nbmci reports are read-only: they are the notebooks as CI executed them.')
  );
}
