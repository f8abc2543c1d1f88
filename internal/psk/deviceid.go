package psk

import (
	"fmt"
	"strings"
)

// MaxDeviceIDLen is the longest device id in bytes (design §3).
const MaxDeviceIDLen = 64

// ValidateDeviceID checks a device id against design §3: 1–64 bytes matching
// [A-Za-z0-9][A-Za-z0-9._:-]*. Ids are compared exactly and never normalized;
// anything else is refused (R25). The error gives the position of the first
// bad byte but does not echo the input, in case someone pasted a key where an
// id belongs (R9).
func ValidateDeviceID(id string) error {
	const rule = "device ids are 1-64 characters of A-Z a-z 0-9 . _ : - starting with a letter or digit"
	if id == "" {
		return &InputError{Source: "device id", Msg: "empty (" + rule + ")"}
	}
	if len(id) > MaxDeviceIDLen {
		return &InputError{Source: "device id", Msg: fmt.Sprintf("too long: %d bytes (%s)", len(id), rule)}
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if i > 0 {
			ok = ok || c == '.' || c == '_' || c == ':' || c == '-'
		}
		if !ok {
			if i == 0 && (c == '.' || c == '_' || c == ':' || c == '-') {
				return &InputError{Source: "device id", Msg: "the first character must be a letter or digit (" + rule + ")"}
			}
			return &InputError{Source: "device id", Msg: fmt.Sprintf("character %d is not allowed (%s)", i+1, rule)}
		}
	}
	return nil
}

// DeviceFileName turns a valid device id into a file name base by writing
// ':' as "%3A" (design §3). The mapping is injective because valid ids hold
// no '%'.
func DeviceFileName(id string) string {
	return strings.ReplaceAll(id, ":", "%3A")
}
