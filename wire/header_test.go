package wire

import (
	"encoding/binary"
	"hash/crc32"
	"testing"
)

// TestChecksumConvention pins the CRC docs/wire.md specifies: CRC-32C with
// the usual initial value and final XOR, over the frame without its CRC
// field.
func TestChecksumConvention(t *testing.T) {
	if got := crc32.Checksum([]byte("123456789"), castagnoli); got != 0xe3069283 {
		t.Fatalf("CRC32C check value %#08x, want 0xe3069283", got)
	}
	b := testFrame(t)
	without := append(append([]byte(nil), b[:offCRC]...), b[offCRC+4:]...)
	if got, want := binary.BigEndian.Uint32(b[offCRC:]), crc32.Checksum(without, castagnoli); got != want {
		t.Fatalf("frame CRC %#08x, CRC32C of the frame without it %#08x", got, want)
	}
}
