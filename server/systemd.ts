/**
 * systemd's notify protocol (sd_notify): READY=1 once the gateway serves, STOPPING=1 when it stops, and WATCHDOG=1
 * while it is well — the event loop turns, the database answers and the dispatcher's ticks run. When any of them
 * sticks, the pings stop and systemd restarts the service (WatchdogSec= in systemd/smsgate.service).
 *
 * Node cannot send a Unix datagram by itself, and a short-lived `systemd-notify` per ping races systemd's lookup of
 * the sender (it may exit before systemd reads the message). So one small helper stays alive for the service's
 * life and forwards each line it reads as a datagram: python3's standard socket module (Debian's python3-minimal;
 * the unit has NotifyAccess=all for it). Outside systemd (no NOTIFY_SOCKET) all of this does nothing.
 */
import { type ChildProcess, spawn } from 'node:child_process';

const FORWARDER = `
import os, socket, sys
address = os.environ["NOTIFY_SOCKET"]
if address.startswith("@"):
    address = "\\0" + address[1:]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for line in sys.stdin:
    line = line.strip()
    if line:
        s.sendto(line.encode(), address)
`;

export interface Notifier {
  notify(state: string): void;
  /** Pings WATCHDOG=1 every half WatchdogSec while `healthy()` resolves true. */
  startWatchdog(healthy: () => Promise<boolean>): void;
  close(): void;
}

export function systemdNotifier(env: NodeJS.ProcessEnv = process.env, log: (line: string) => void = () => undefined): Notifier {
  if (!env.NOTIFY_SOCKET) return { notify: () => undefined, startWatchdog: () => undefined, close: () => undefined };
  let helper: ChildProcess | null = spawn('python3', ['-c', FORWARDER], { stdio: ['pipe', 'ignore', 'inherit'], env });
  // Without python3, systemd-notify per message: it may race systemd's lookup of the sender, but beats silence.
  let fallback = false;
  helper.on('error', (error) => {
    log(`systemd notify helper (python3) failed: ${error.message}; using systemd-notify instead`);
    helper = null;
    fallback = true;
  });
  helper.stdin?.on('error', () => undefined);
  let timer: NodeJS.Timeout | null = null;
  const notify = (state: string) => {
    const line = state.replace(/\n/g, ' ');
    if (fallback) spawn('systemd-notify', [line], { stdio: 'ignore', env }).on('error', () => undefined);
    else helper?.stdin?.write(`${line}\n`);
  };
  return {
    notify,
    startWatchdog(healthy) {
      const usec = Number(env.WATCHDOG_USEC);
      if (!Number.isFinite(usec) || usec <= 0) return;
      // A watchdog meant for another process (after a fork) is not ours.
      if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid) return;
      // Four pings per interval: one slow or failed check does not make systemd kill a working gateway.
      const every = Math.max(250, usec / 1000 / 4);
      let checking = false;
      timer = setInterval(() => {
        if (checking) return;
        checking = true;
        healthy()
          .then((ok) => {
            if (ok) notify('WATCHDOG=1');
            else log('watchdog: not healthy; not pinging systemd');
          })
          .catch((error: unknown) => log(`watchdog: health check failed: ${(error as Error).message}`))
          .finally(() => {
            checking = false;
          });
      }, every);
      timer.unref();
    },
    close() {
      if (timer) clearInterval(timer);
      helper?.stdin?.end();
      helper = null;
    },
  };
}
