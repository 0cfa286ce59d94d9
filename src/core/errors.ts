/**
 * Error classes with stable codes (after undici's `lib/core/errors.js`): callers switch on `code`,
 * never on message text. The core throws these only at its edges (parsing configuration and
 * addresses); the packet path never throws, it drops with a reason.
 */
export class ClatdError extends Error {
  readonly code: string;
  constructor(message: string, code = 'ERR_CLATD') {
    super(message);
    this.name = 'ClatdError';
    this.code = code;
  }
}

/** A textual address or prefix that does not parse, or a prefix length that is not allowed. */
export class AddressError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_ADDRESS');
    this.name = 'AddressError';
  }
}

/** A translator or daemon setting that is out of range or inconsistent. */
export class ConfigError extends ClatdError {
  constructor(message: string) {
    super(message, 'ERR_CLATD_CONFIG');
    this.name = 'ConfigError';
  }
}
