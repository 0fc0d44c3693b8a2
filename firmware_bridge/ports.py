"""Serial port discovery: list ports with their USB identity, find a port by identity.

Port names change when a USB cable is replugged (/dev/ttyACM0 becomes /dev/ttyACM1); the
USB identity (vendor id, product id, serial number) does not, so reconnects look for it.
"""

from __future__ import annotations

from dataclasses import dataclass

from serial.tools import list_ports


@dataclass(frozen=True)
class PortInfo:
    device: str
    description: str
    usb_identity: str  # "VID:PID SERIAL", "" for ports that are not USB


def usb_identity(port) -> str:
    """The stable identity of a pyserial ListPortInfo, or "" if it is not a USB device."""
    if port.vid is None:
        return ""
    ident = f"{port.vid:04x}:{port.pid:04x}"
    return f"{ident} {port.serial_number}" if port.serial_number else ident


def list_serial_ports() -> list[PortInfo]:
    return [PortInfo(p.device, p.description or "", usb_identity(p))
            for p in sorted(list_ports.comports(), key=lambda p: p.device)]


def identity_of(device: str) -> str:
    """USB identity of the port at ``device`` ("" if unknown or not USB)."""
    for p in list_ports.comports():
        if device in (p.device, getattr(p, "device_path", None)):
            return usb_identity(p)
    return ""


def find_by_identity(identity: str) -> str | None:
    """The device path of the port with this USB identity now, if it is plugged in."""
    if not identity:
        return None
    for p in list_ports.comports():
        if usb_identity(p) == identity:
            return p.device
    return None
