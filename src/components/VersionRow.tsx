import { Time } from '@jupyterlab/coreutils';
import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { INbmciModel, Nbmci } from '../tokens';
import { AliasChips, CiBadge, KeyMetrics, ServabilityChip } from './chips';
import { VersionInputs } from './VersionInputs';

export interface IVersionRowProps {
  model: INbmciModel;
  name: string;
  version: Nbmci.IVersion;
  busy: boolean;
  trans: TranslationBundle;
}

/**
 * One version: `vN`, message, CI and servability chips, key metrics, aliases, its actions
 * and, when toggled, its inputs.
 */
export function VersionRow(props: IVersionRowProps): JSX.Element {
  const { model, name, version, busy, trans } = props;
  const notebooks = version.ci?.notebooks ?? [];
  const publish = publishState(version, trans);
  const inputsShown = model.isInputsShown(name, version.version);
  return (
    <li className="jp-nbmci-Version nbmci-version" data-ref={version.ref} data-version={version.version}>
      <div className="jp-nbmci-VersionHead">
        <span className="jp-nbmci-VersionNumber">v{version.version}</span>
        <CiBadge ci={version.ci} trans={trans} />
        <ServabilityChip servability={version.servability} versionRef={version.ref} trans={trans} />
        <AliasChips aliases={version.aliases} />
        {!version.model.trusted && (
          <span className="jp-nbmci-Untrusted" title={trans.__('Stored with pickle: not trusted')}>
            {trans.__('untrusted')}
          </span>
        )}
      </div>
      <div className="jp-nbmci-VersionLine">
        <span className="jp-nbmci-Message" title={version.message ?? ''}>
          {version.message}
        </span>
        <span className="jp-nbmci-Time" title={Time.format(version.created_at)}>
          {Time.formatHuman(version.created_at)}
        </span>
      </div>
      <KeyMetrics version={version} />
      <div className="jp-nbmci-Actions">
        <button
          className="jp-nbmci-Button nbmci-run-ci"
          disabled={busy}
          title={trans.__('Run the evaluation notebooks on %1', version.ref)}
          onClick={() => void model.runCI(name, version.version)}
        >
          {version.ci ? trans.__('Re-run CI') : trans.__('Run CI')}
        </button>
        <button
          className="jp-nbmci-Button nbmci-publish"
          disabled={busy || !publish.enabled}
          title={publish.title}
          onClick={() => void model.publish(name, version.version)}
        >
          {trans.__('Publish')}
        </button>
        {publish.force && (
          <button
            className="jp-nbmci-Button jp-mod-secondary nbmci-publish-force"
            disabled={busy || !publish.force.enabled}
            title={publish.force.title}
            onClick={() => void model.publish(name, version.version, true)}
          >
            {trans.__('Publish anyway')}
          </button>
        )}
        {notebooks.map((run, i) => (
          <button
            key={run.notebook}
            className="jp-nbmci-Button nbmci-report"
            data-notebook={run.notebook}
            disabled={busy}
            title={trans.__('Open the executed %1 (%2)', run.notebook, run.status)}
            onClick={() => void model.openReport(name, version.version, run.notebook)}
          >
            {notebooks.length === 1 ? trans.__('Report') : trans.__('Report %1', i + 1)}
          </button>
        ))}
        <button
          className="jp-nbmci-Button jp-nbmci-InputsToggle nbmci-inputs"
          aria-expanded={inputsShown}
          title={
            inputsShown
              ? trans.__('Hide the inputs of %1', version.ref)
              : trans.__('Show the input columns %1 expects, with their types', version.ref)
          }
          onClick={() => model.toggleInputs(name, version.version)}
        >
          {trans.__('Inputs')}
        </button>
      </div>
      {inputsShown && (
        <VersionInputs detail={model.versionDetail(name, version.version)} trans={trans} />
      )}
    </li>
  );
}

interface IButtonState {
  enabled: boolean;
  /** The tooltip: what it does, or why it is disabled. */
  title: string;
}

/**
 * What Publish, and its forced variant, may do for a version, as `nbmci publish` decides:
 * CI must have passed (force skips that, and is recorded) and the version must be servable
 * (force never skips that). `force` is null when there is nothing to force past.
 */
export function publishState(
  version: Nbmci.IVersion,
  trans: TranslationBundle
): IButtonState & { force: IButtonState | null } {
  const v = `v${version.version}`;
  if (version.aliases.includes('production')) {
    return { enabled: false, title: trans.__('%1 is in production', v), force: null };
  }
  const servability = version.servability?.status ?? 'unknown';
  const ci = version.ci?.status ?? null;
  let notServable: string | null = null;
  if (servability === 'not servable') {
    notServable = trans.__(
      '%1 is not servable: %2',
      v,
      version.servability?.reason ?? trans.__('no reason recorded')
    );
  } else if (servability === 'checking') {
    notServable = trans.__('%1 is being checked for servability; wait for the verdict', v);
  } else if (servability !== 'servable') {
    notServable = trans.__('%1 has not been checked for servability', v);
  }
  const ciProblem =
    ci === 'passed'
      ? null
      : ci === null
        ? trans.__('CI has not run on %1', v)
        : trans.__('CI %1 on %2', ci, v);
  const problems = [ciProblem, notServable].filter((p): p is string => p !== null);
  const title = problems.length
    ? trans.__('Publish needs a version that passed CI and is servable: %1.', problems.join('; '))
    : trans.__('Move production to %1 (CI passed, servable)', v);
  const force =
    ciProblem === null
      ? null
      : notServable === null
        ? {
            enabled: true,
            title: trans.__(
              'Publish %1 anyway: %2. Force skips the CI gates (the override is recorded), never the servability check.',
              v,
              ciProblem
            )
          }
        : {
            enabled: false,
            title: trans.__(
              'Force skips only the CI gates, never the servability check: %1.',
              notServable
            )
          };
  return { enabled: problems.length === 0, title, force };
}
