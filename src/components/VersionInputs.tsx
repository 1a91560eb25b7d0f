import { TranslationBundle } from '@jupyterlab/translation';
import React from 'react';

import { Nbmci } from '../tokens';

/** Columns listed before "… N more"; categories listed per column before "+N". */
const MAX_COLUMNS = 30;
const MAX_CATEGORIES = 8;

export interface IVersionInputsProps {
  /** The version's details; undefined while they load, an Error when they could not. */
  detail: Nbmci.IVersionDetail | Error | undefined;
  trans: TranslationBundle;
}

/**
 * A version's inputs: its schema's columns as `name — type (categories), may be missing`, or,
 * for versions without a schema, the recorded input names and dtypes. Text only: column names
 * and categories come from users' data.
 */
export function VersionInputs(props: IVersionInputsProps): JSX.Element {
  const { detail, trans } = props;
  if (detail === undefined) {
    return (
      <div className="jp-nbmci-VersionInputs" data-state="loading">
        {trans.__('Loading inputs…')}
      </div>
    );
  }
  if (detail instanceof Error) {
    const { hint } = detail as { hint?: string };
    return (
      <div className="jp-nbmci-VersionInputs jp-nbmci-Offline" data-state="error">
        {trans.__('Could not read the inputs: %1', detail.message)}
        {hint ? ` ${hint}` : ''}
      </div>
    );
  }
  const signature: Nbmci.ISignature = detail.signature ?? {};
  const schema = signature.schema;
  const lines: IColumnLine[] = schema
    ? schema.columns.map(column => ({
        name: column.name,
        type: column.type,
        text: describeColumn(column, trans),
        title: trans.__('%1: %2 (trained as %3)', column.name, column.type, column.dtype)
      }))
    : (signature.inputs ?? []).map(input => ({
        name: input.name,
        type: input.dtype,
        text: input.dtype === 'unknown' ? null : input.dtype,
        title:
          input.dtype === 'unknown'
            ? trans.__('%1: type not recorded', input.name)
            : trans.__('%1: dtype %2', input.name, input.dtype)
      }));
  return (
    <div className="jp-nbmci-VersionInputs" data-state="loaded" data-schema={schema ? 'yes' : 'no'}>
      <div className="jp-nbmci-InputsHead">{heading(schema, lines.length, trans)}</div>
      {lines.length > 0 && (
        <ul className="jp-nbmci-InputColumns">
          {lines.slice(0, MAX_COLUMNS).map((line, i) => (
            <li
              key={i}
              className="jp-nbmci-InputColumn nbmci-input"
              data-name={line.name}
              data-type={line.type}
              title={line.title}
            >
              <span className="jp-nbmci-InputName">{line.name}</span>
              {line.text !== null && (
                <>
                  {' — '}
                  <span className="jp-nbmci-InputType">{line.text}</span>
                </>
              )}
            </li>
          ))}
          {lines.length > MAX_COLUMNS && (
            <li className="jp-nbmci-InputColumn jp-nbmci-InputMore">
              {trans.__('… %1 more', lines.length - MAX_COLUMNS)}
            </li>
          )}
        </ul>
      )}
      <RecordedOutputs outputs={signature.outputs_recorded} trans={trans} />
    </div>
  );
}

interface IColumnLine {
  name: string;
  type: string;
  /** The type as people read it; null when it was not recorded. */
  text: string | null;
  title: string;
}

/** The methods whose outputs the servability check replays, with their types. */
function RecordedOutputs(props: {
  outputs: Nbmci.ISignature['outputs_recorded'];
  trans: TranslationBundle;
}): JSX.Element | null {
  const entries = Object.entries(props.outputs ?? {});
  if (!entries.length) {
    return null;
  }
  const text = entries
    .map(([method, out]) => {
      const shape = out.shape?.length ? `[${out.shape.join('×')}]` : '';
      return `${method} → ${String(out.type).replace('_', ' ')}${shape}`;
    })
    .join(', ');
  return (
    <div
      className="jp-nbmci-InputsOutputs"
      title={props.trans.__('Outputs recorded on the example rows, replayed by the servability check')}
    >
      {props.trans.__('outputs: %1', text)}
    </div>
  );
}

function heading(
  schema: Nbmci.IInputSchema | undefined,
  count: number,
  trans: TranslationBundle
): string {
  if (!schema) {
    return count
      ? trans.__('No input schema recorded; the input names:')
      : trans.__('No inputs recorded: it was committed without data or example rows.');
  }
  const columns = trans._n('%1 column', '%1 columns', count);
  switch (schema.kind) {
    case 'frame':
      return trans.__('Input: a DataFrame, %1', columns);
    case 'matrix':
      return trans.__('Input: a matrix, %1', columns);
    case 'series':
      return trans.__('Input: a Series');
    case 'vector':
      return trans.__('Input: a 1-D array');
    case 'list':
      return trans.__('Input: a list');
    default:
      return trans.__('Input: %1, %2', schema.kind, columns);
  }
}

/** `category (basic, pro, +3; ordered), may be missing`, as `nbmci show` prints a column. */
export function describeColumn(column: Nbmci.ISchemaColumn, trans: TranslationBundle): string {
  let text = String(column.type).replace('_', ' ');
  if (column.categories) {
    const shown = column.categories.slice(0, MAX_CATEGORIES).map(String).join(', ');
    const more = column.categories.length - MAX_CATEGORIES;
    const rest = more > 0 ? `, +${more}` : '';
    text += ` (${shown}${rest}${column.ordered ? trans.__('; ordered') : ''})`;
  }
  return column.nullable ? trans.__('%1, may be missing', text) : text;
}
