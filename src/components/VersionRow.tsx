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
  const isProduction = version.aliases.includes('production');
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
          disabled={busy || isProduction}
          title={
            isProduction
              ? trans.__('%1 is in production', version.ref)
              : trans.__('Move production to %1 (it must have passed CI)', version.ref)
          }
          onClick={() => void model.publish(name, version.version)}
        >
          {trans.__('Publish')}
        </button>
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
