import { LabIcon } from '@jupyterlab/ui-components';

import iconSvg from '../style/icon.svg';

/** A box of stacked model versions; themed through JupyterLab's `jp-icon3` class. */
export const nbmciIcon = new LabIcon({ name: 'nbmci:models', svgstr: iconSvg });
