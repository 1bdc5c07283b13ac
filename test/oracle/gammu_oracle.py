#!/usr/bin/python3
"""Gammu as the judge of smsgate's PDUs (python3-gammu, Debian's /usr/bin/python3).

Reads one JSON request on stdin and prints one JSON answer:
  {"decode": [{"pdu": HEX, "report": BOOL}, ...], "split": [{"text": STR, "unicode": BOOL}, ...]}
"decode": what Gammu's DecodePDU makes of each PDU (SMSC field first), and the TPDU Gammu's EncodePDU writes back
for the same message (Type Status_Report when a report was requested: Gammu has no other way to say TP-SRR).
"split": how Gammu's EncodeSMS (ConcatenatedTextLong / ConcatenatedAutoTextLong) cuts a text into parts.
"""
import binascii
import json
import sys

import gammu


def plain(value):
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, bytes):
        return binascii.hexlify(value).decode().upper()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def tpdu_hex(pdu_with_smsc):
    data = binascii.hexlify(pdu_with_smsc).decode().upper()
    smsc_octets = int(data[:2], 16) + 1
    return data[2 * smsc_octets:]


def decode(item):
    try:
        sms = gammu.DecodePDU(binascii.unhexlify(item["pdu"]), SMSC=True)
    except Exception as error:  # Gammu's errors are exceptions of many classes
        return {"error": repr(error)}
    out = plain(sms)
    again = dict(sms)
    if item.get("report"):
        again["Type"] = "Status_Report"
    try:
        out["reencoded"] = tpdu_hex(gammu.EncodePDU(again))
    except Exception as error:
        out["reencoded_error"] = repr(error)
    return out


def split(item):
    entry = "ConcatenatedTextLong" if item.get("unicode") is not None else "ConcatenatedAutoTextLong"
    parts = gammu.EncodeSMS({
        "Class": -1,
        "Unicode": bool(item.get("unicode")),
        "Entries": [{"ID": entry, "Buffer": item["text"]}],
    })
    return [{"Coding": p["Coding"], "Length": p["Length"], "UDH": plain(p["UDH"]), "Text": p["Text"]} for p in parts]


def main():
    request = json.load(sys.stdin)
    answer = {
        "version": gammu.Version()[0],
        "decode": [decode(item) for item in request.get("decode", [])],
        "split": [split(item) for item in request.get("split", [])],
    }
    # ASCII with escapes: Gammu's decoder can return lone surrogates (junk after a miscounted escape pair), which
    # UTF-8 cannot carry; JSON's \uXXXX escapes can.
    json.dump(answer, sys.stdout, ensure_ascii=True)


if __name__ == "__main__":
    main()
