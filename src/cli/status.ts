/** `clatd status`: not written yet (see the open issues). */
import { ClatdError } from '../core/errors.js';

export async function main(_argv: string[]): Promise<number> {
  throw new ClatdError('clatd status is not implemented yet');
}
