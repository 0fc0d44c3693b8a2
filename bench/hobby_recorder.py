"""The baseline most hobby projects use: pyserial readline, float(), a CSV writer.

Run by bench_e2e.py against the simulator in ASCII mode; not part of the product.
"""

import csv
import sys
import time

import serial


def main() -> None:
    port, out, duration = sys.argv[1], sys.argv[2], float(sys.argv[3])
    ser = serial.Serial(port, 921600, timeout=0.5)
    end = time.monotonic() + duration
    with open(out, "w", newline="") as f:
        w = csv.writer(f)
        while time.monotonic() < end:
            line = ser.readline()
            try:
                value = float(line.split()[0])
            except (ValueError, IndexError):
                continue
            w.writerow([time.monotonic(), value])


if __name__ == "__main__":
    main()
