import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/**
 * An error answered by the nbmci server extension, or the extension being absent.
 */
export class NbmciError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly hint?: string,
    /** For the panel's actions: why, as a clause with no CLI reference or command. */
    readonly reason?: string,
    /** What to do in the panel (the CLI's `hint` names commands). */
    readonly panelHint?: string
  ) {
    super(message);
    this.name = 'NbmciError';
  }
}

/**
 * Call `{baseUrl}nbmci/api/{path}`; `makeRequest` adds the token and the XSRF header.
 */
export async function requestAPI<T>(
  path: string,
  init: RequestInit = {},
  settings: ServerConnection.ISettings = ServerConnection.makeSettings()
): Promise<T> {
  const url = URLExt.join(settings.baseUrl, 'nbmci', 'api', path);
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }
  const text = await response.text();
  let data: any = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (response.status === 404 && !data?.error) {
    throw new NbmciError(
      404,
      'The nbmci server extension is not running.',
      'Run `pip install nbmci` where JupyterLab runs, restart it, and check `jupyter server extension list`.'
    );
  }
  if (!response.ok) {
    // {"error": ClassName, "message", "hint"} or {"error": message, "type", "hint"}
    const message = data?.message ?? data?.error ?? response.statusText;
    throw new NbmciError(
      response.status,
      String(message),
      data?.hint ?? undefined,
      data?.reason ?? undefined,
      data?.panel_hint ?? undefined
    );
  }
  return data as T;
}

/** POST a JSON body. */
export function postAPI<T>(path: string, body: unknown = {}): Promise<T> {
  return requestAPI<T>(path, { method: 'POST', body: JSON.stringify(body) });
}

/** A path segment: model names are safe, notebook paths may hold slashes. */
export function segment(value: string | number): string {
  return encodeURIComponent(String(value));
}
