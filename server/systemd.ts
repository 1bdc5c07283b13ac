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
  helper.on('error', (error) => {
    log(`systemd notify helper (python3) failed: ${error.message}; systemd will not hear READY or the watchdog`);
    helper = null;
  });
  helper.stdin?.on('error', () => undefined);
  let timer: NodeJS.Timeout | null = null;
  const notify = (state: string) => {
    helper?.stdin?.write(`${state.replace(/\n/g, ' ')}\n`);
  };
  return {
    notify,
    startWatchdog(healthy) {
      const usec = Number(env.WATCHDOG_USEC);
      if (!Number.isFinite(usec) || usec <= 0) return;
      // A watchdog meant for another process (after a fork) is not ours.
      if (env.WATCHDOG_PID && Number(env.WATCHDOG_PID) !== process.pid) return;
      const every = Math.max(500, usec / 1000 / 2);
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
