#!/usr/bin/env python3
"""An independent reader of TensorBoard event files, written from the
format's description (TFRecord framing with masked CRC-32C; the Event,
Summary and SessionLog protobuf messages) in plain Python, without
TensorFlow, TensorBoard or protobuf. Prints one JSON object per event:
{"step", "wall_time", and "file_version", "session_start" or "scalars"}.
Exits 1 naming the file and offset at a bad checksum or a malformed record.

    read_tfevents.py EVENT_FILE...
"""
import json
import struct
import sys


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def masked(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def fields(data):
    """(field number, wire type, value) of a protobuf message."""
    at = 0
    while at < len(data):
        key, at = varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = varint(data, at)
        elif wire == 1:
            value, at = data[at:at + 8], at + 8
        elif wire == 2:
            size, at = varint(data, at)
            value, at = data[at:at + size], at + size
        elif wire == 5:
            value, at = data[at:at + 4], at + 4
        else:
            raise ValueError(f"wire type {wire}")
        yield number, wire, value


def decode_event(data):
    event = {}
    for number, wire, value in fields(data):
        if number == 1 and wire == 1:
            event["wall_time"] = struct.unpack("<d", value)[0]
        elif number == 2 and wire == 0:
            event["step"] = value - (1 << 64) if value >= 1 << 63 else value
        elif number == 3 and wire == 2:
            event["file_version"] = value.decode()
        elif number == 5 and wire == 2:
            scalars = {}
            for _, _, entry in fields(value):
                parts = {n: v for n, _, v in fields(entry)}
                scalars[parts[1].decode()] = struct.unpack("<f", parts[2])[0]
            event["scalars"] = scalars
        elif number == 6 and wire == 2:
            status = dict((n, v) for n, _, v in fields(value)).get(1)
            event["session_start"] = status == 1
    return event


def read(path):
    data = open(path, "rb").read()
    at = 0
    while at < len(data):
        if at + 12 > len(data):
            raise ValueError(f"{path}: record at byte {at} is truncated")
        length_bytes = data[at:at + 8]
        (length,) = struct.unpack("<Q", length_bytes)
        (length_crc,) = struct.unpack("<I", data[at + 8:at + 12])
        if length_crc != masked(length_bytes):
            raise ValueError(f"{path}: bad length checksum at byte {at}")
        body = data[at + 12:at + 12 + length]
        (body_crc,) = struct.unpack("<I", data[at + 12 + length:at + 16 + length])
        if len(body) != length or body_crc != masked(body):
            raise ValueError(f"{path}: bad data checksum at byte {at}")
        yield decode_event(body)
        at += 16 + length


if __name__ == "__main__":
    assert crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
    try:
        for path in sys.argv[1:]:
            for event in read(path):
                print(json.dumps(event))
    except (ValueError, KeyError, IndexError, struct.error) as error:
        print(f"read_tfevents: {error}", file=sys.stderr)
        sys.exit(1)
