# -*- coding: utf-8 -*-
"""Starts a real Mesos 1.11.0 "local" cluster (master + MESOS_NUM_SLAVES agents)
in this Python 2.7 process and keeps it alive.

The v0 driver in mesos.scheduler starts the whole cluster in-process when given
the master address "local" (shared/reference/mesos/AVAILABILITY.md §2). Its own
v0 framework suppresses offers and declines everything, so that the HTTP
scheduler under test receives all offers.

Usage: python2.7 bootstrap.py [SECONDS]
  Runs for SECONDS (default 600) or until SIGTERM/SIGINT, then stops the driver.
  Configuration comes from LIBPROCESS_* and MESOS_* environment variables.
"""
import os
import signal
import sys
import time

from mesos.interface import Scheduler, mesos_pb2
from mesos.scheduler import MesosSchedulerDriver


class Quiet(Scheduler):
    def registered(self, driver, framework_id, master_info):
        driver.suppressOffers()
        print('local master up at %s:%d (bootstrap framework %s, offers suppressed)'
              % (master_info.hostname, master_info.port, framework_id.value))
        sys.stdout.flush()

    def resourceOffers(self, driver, offers):
        # Offers sent before the suppression took effect: give them back and
        # keep the resources filtered for this framework for an hour.
        for o in offers:
            driver.declineOffer(o.id, mesos_pb2.Filters(refuse_seconds=3600))

    def error(self, driver, message):
        sys.stderr.write('bootstrap framework error: %s\n' % message)
        sys.stderr.flush()


stop_requested = []


def on_signal(signum, _frame):
    stop_requested.append(signum)


def main():
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 600.0
    # Installed before the driver starts, so a SIGTERM during start-up is seen.
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    fw = mesos_pb2.FrameworkInfo()
    fw.user = 'root'
    fw.name = 'local-bootstrap'
    driver = MesosSchedulerDriver(Quiet(), fw, 'local')
    driver.start()

    deadline = time.time() + seconds
    # Short sleeps: Python 2 runs signal handlers only between bytecodes.
    while not stop_requested and time.time() < deadline:
        time.sleep(0.2)

    driver.stop()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter/C++ static teardown while libprocess threads are
    # still running; it can only crash or hang, and nothing is left to save.
    os._exit(0)


if __name__ == '__main__':
    main()
