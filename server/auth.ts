/**
 * Who is asking: users with bcrypt password hashes, API tokens (random, shown once, stored as SHA-256), web
 * sessions (tokens that expire, carried in an HttpOnly cookie), HTTP Basic, and the classic login/pass parameters.
 *
 * Failed logins are counted per client address and per user name (whether or not that user exists), and an address
 * or a name over the limit gets 429 until its window passes. Every failure looks the same from outside — same
 * answer, and a bcrypt comparison even for a user that does not exist — so an answer never tells whether a user
 * exists. A verified login/password pair is remembered for a few minutes (keyed by an HMAC under a per-process key,
 * checked against the stored hash each time), so a device that sends its password with every request does not pay
 * bcrypt's cost every time.
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import bcrypt from 'bcrypt';
import type { Storage, User } from '../sql/storage.js';

/** A failed authentication: 401 (wrong), 403 (no credentials), 429 (too many failures). */
export class AuthError extends Error {
  override readonly name = 'AuthError';
  constructor(
    readonly status: 401 | 403 | 429,
    message: string,
    readonly retryAfterS?: number,
  ) {
    super(message);
  }
}

export const WRONG_CREDENTIALS = 'wrong login or password';

export async function hashPassword(password: string, cost = 10): Promise<string> {
  return bcrypt.hash(password, cost);
}

/** Checks a new password; returns the problem, or null. */
export function passwordProblem(password: string): string | null {
  if (password.length < 8) return 'a password needs at least 8 characters';
  if (Buffer.byteLength(password) > 72) return 'a password may have at most 72 bytes (bcrypt reads no more)';
  return null;
}

/** A new API token: "sg_" and 32 random bytes in base64url. */
export function newToken(): string {
  return `sg_${randomBytes(32).toString('base64url')}`;
}

/** What is stored of a token: its SHA-256 (tokens are random, so a fast hash is enough). */
export function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Counts failures per key in fixed windows. */
class FailureCounter {
  private readonly counts = new Map<string, { n: number; resetAt: number }>();
  constructor(
    private readonly max: number,
    private readonly windowMs: number,
  ) {}

  /** Seconds until `key` may try again, or 0 when it may now. */
  blockedFor(key: string, now: number): number {
    const c = this.counts.get(key);
    if (!c || c.resetAt <= now) return 0;
    return c.n >= this.max ? Math.ceil((c.resetAt - now) / 1000) : 0;
  }

  fail(key: string, now: number): void {
    const c = this.counts.get(key);
    if (!c || c.resetAt <= now) this.counts.set(key, { n: 1, resetAt: now + this.windowMs });
    else c.n++;
    if (this.counts.size > 100_000) this.sweep(now);
  }

  clear(key: string): void {
    this.counts.delete(key);
  }

  private sweep(now: number): void {
    for (const [key, c] of this.counts) if (c.resetAt <= now) this.counts.delete(key);
  }
}

export interface AuthOptions {
  maxFailures: number;
  failureWindowS: number;
  sessionHours: number;
  /** The cost of the stored hashes, so that an unknown user's comparison costs the same (default 10). */
  bcryptCost?: number;
  clock?: () => number;
}

export interface Principal {
  user: User;
  /** How the caller proved it: password (Basic or login/pass), token, or session cookie. */
  via: 'password' | 'token' | 'session';
}

const CACHE_MS = 5 * 60_000;

export class Authenticator {
  private readonly byAddress: FailureCounter;
  private readonly byName: FailureCounter;
  private readonly cacheKey = randomBytes(32);
  private readonly verified = new Map<string, { userId: number; hash: string; until: number }>();
  /** Compared against when the user does not exist, so that case costs what a wrong password costs. */
  private readonly dummyHash: string;
  private readonly clock: () => number;

  constructor(
    private readonly storage: Storage,
    readonly options: AuthOptions,
  ) {
    this.byAddress = new FailureCounter(options.maxFailures, options.failureWindowS * 1000);
    this.byName = new FailureCounter(options.maxFailures, options.failureWindowS * 1000);
    this.clock = options.clock ?? Date.now;
    this.dummyHash = bcrypt.hashSync(randomBytes(12).toString('hex'), options.bcryptCost ?? 10);
  }

  /** A login with name and password from `address`; throws AuthError. */
  async password(name: string, password: string, address: string): Promise<Principal> {
    const now = this.clock();
    // Counted by the name as typed, but for trailing spaces (MariaDB compares names without them).
    const nameKey = `user:${name.replace(/ +$/, '')}`;
    this.checkBlocked(address, nameKey, now);
    const key = createHmac('sha256', this.cacheKey).update(name).update('\0').update(password).digest('hex');
    const cached = this.verified.get(key);
    if (cached && cached.until > now) {
      const user = await this.storage.getUser(cached.userId);
      if (user && !user.disabled && user.passwordHash === cached.hash && user.name === name) return { user, via: 'password' };
      this.verified.delete(key);
    }
    const found = await this.storage.getUserByName(name);
    // Exactly this name: MariaDB would also find "admin" for "admin  ".
    const user = found?.name === name ? found : null;
    const ok = await bcrypt.compare(password, user?.passwordHash ?? this.dummyHash);
    if (!user || !ok || user.disabled) {
      this.failed(address, nameKey, now);
      throw new AuthError(401, WRONG_CREDENTIALS);
    }
    this.byName.clear(nameKey);
    if (this.verified.size > 10_000) this.verified.clear();
    this.verified.set(key, { userId: user.id, hash: user.passwordHash, until: now + CACHE_MS });
    return { user, via: 'password' };
  }

  /**
   * An API token (Bearer) or a session token (cookie). Tokens are 256 random bits, which no one guesses: they are
   * not rate-limited, and an address blocked for wrong passwords still gets in with a valid token.
   */
  async token(token: string, via: 'token' | 'session' = 'token'): Promise<Principal> {
    const now = this.clock();
    const found = await this.storage.findToken(tokenHash(token), now);
    const isSession = found?.token.expiresAt !== null && found?.token.expiresAt !== undefined;
    if (!found || found.user.disabled || isSession !== (via === 'session')) {
      throw new AuthError(401, via === 'session' ? 'not logged in, or the session has expired' : 'invalid or revoked token');
    }
    // Touched at most once a minute: a busy device should not turn every request into a write.
    if (!found.token.lastUsedAt || now - found.token.lastUsedAt > 60_000) await this.storage.touchToken(found.token.id, now);
    return { user: found.user, via };
  }

  /** Starts a web session for a user who logged in: the cookie's value and when it expires. */
  async startSession(user: User): Promise<{ token: string; expiresAt: number }> {
    const token = newToken();
    const expiresAt = this.clock() + this.options.sessionHours * 3_600_000;
    await this.storage.createToken(user.id, tokenHash(token), 'web session', expiresAt);
    return { token, expiresAt };
  }

  async endSession(token: string): Promise<void> {
    await this.storage.revokeTokenByHash(tokenHash(token));
  }

  private checkBlocked(address: string, name: string, now: number): void {
    const wait = Math.max(this.byAddress.blockedFor(address, now), this.byName.blockedFor(name, now));
    if (wait > 0) throw new AuthError(429, `too many failed logins; try again in ${wait} s`, wait);
  }

  private failed(address: string, name: string, now: number): void {
    this.byAddress.fail(address, now);
    this.byName.fail(name, now);
  }
}
