package partition

import (
	"fmt"
	"strconv"
)

// Layout of a partition table in flash.
const (
	// DefaultTableOffset is the flash offset of the partition table in a
	// default ESP-IDF build (CONFIG_PARTITION_TABLE_OFFSET).
	DefaultTableOffset = 0x8000
	// TableSize is the flash sector the table occupies; the first partition
	// starts after it (0x9000 by default).
	TableSize = 0x1000
	// MaxLength is the size of the binary table: entries, MD5 record and
	// 0xFF padding. The rest of the sector is left for a signature.
	MaxLength = 0xC00
	// EntrySize is the size of one binary entry and of the MD5 record.
	EntrySize = 32
	// MaxPartitions is the number of partitions that fit in MaxLength
	// together with the MD5 record and the end marker.
	MaxPartitions = MaxLength/EntrySize - 2
	// MaxNameLength is the longest partition name, in bytes.
	MaxNameLength = 16
)

// Partition types (esp_partition_type_t).
const (
	TypeApp            uint8 = 0x00
	TypeData           uint8 = 0x01
	TypeBootloader     uint8 = 0x02
	TypePartitionTable uint8 = 0x03
)

// Subtypes of TypeApp.
const (
	SubtypeAppFactory uint8 = 0x00
	SubtypeAppOTA0    uint8 = 0x10 // ota_0; ota_N is SubtypeAppOTA0+N, N < 16
	SubtypeAppTest    uint8 = 0x20
	SubtypeAppTEE0    uint8 = 0x30 // tee_0; tee_1 is SubtypeAppTEE0+1
)

// Subtypes of TypeData.
const (
	SubtypeDataOTA       uint8 = 0x00
	SubtypeDataPHY       uint8 = 0x01
	SubtypeDataNVS       uint8 = 0x02
	SubtypeDataCoredump  uint8 = 0x03
	SubtypeDataNVSKeys   uint8 = 0x04
	SubtypeDataEFuse     uint8 = 0x05
	SubtypeDataUndefined uint8 = 0x06
	SubtypeDataESPHTTPD  uint8 = 0x80
	SubtypeDataFAT       uint8 = 0x81
	SubtypeDataSPIFFS    uint8 = 0x82
	SubtypeDataLittleFS  uint8 = 0x83
	SubtypeDataTEEOTA    uint8 = 0x90
	SubtypeDataTEESecStg uint8 = 0x91 // TEE secure storage
)

// Subtypes of TypeBootloader and TypePartitionTable.
const (
	SubtypeBootloaderPrimary     uint8 = 0x00
	SubtypeBootloaderOTA         uint8 = 0x01
	SubtypeBootloaderRecovery    uint8 = 0x02
	SubtypePartitionTablePrimary uint8 = 0x00
	SubtypePartitionTableOTA     uint8 = 0x01
)

// Flag bits of Partition.Flags.
const (
	FlagEncrypted uint32 = 1 << 0
	FlagReadonly  uint32 = 1 << 1
)

// Partition is one entry of a partition table.
type Partition struct {
	Name    string
	Type    uint8
	Subtype uint8
	Offset  uint32
	Size    uint32
	// Flags holds FlagEncrypted and FlagReadonly. Bits ESP-IDF does not
	// define are kept as read from a binary table.
	Flags uint32
}

// Table is a partition table, its partitions in table order.
type Table struct {
	Partitions []Partition
}

// Find returns the partition called name (names are compared exactly).
// The pointer refers to the table's own entry.
func (t Table) Find(name string) (*Partition, bool) {
	for i := range t.Partitions {
		if t.Partitions[i].Name == name {
			return &t.Partitions[i], true
		}
	}
	return nil, false
}

// End returns the first byte after the partition, as a 64-bit value so that
// it cannot wrap.
func (p Partition) End() uint64 { return uint64(p.Offset) + uint64(p.Size) }

// Encrypted reports whether the partition has the encrypted flag.
func (p Partition) Encrypted() bool { return p.Flags&FlagEncrypted != 0 }

// Readonly reports whether the partition has the readonly flag.
func (p Partition) Readonly() bool { return p.Flags&FlagReadonly != 0 }

// TypeName returns the name gen_esp32part uses for the partition's type
// (app, data, bootloader, partition_table), or the type in decimal for a
// custom type, as gen_esp32part writes it.
func (p Partition) TypeName() string {
	if name, ok := nameOf(typeKeywords, p.Type); ok {
		return name
	}
	return strconv.Itoa(int(p.Type))
}

// SubtypeName returns the name gen_esp32part uses for the partition's
// subtype (factory, ota_0, nvs, nvs_keys, phy, …), or the subtype in decimal
// when its type has no name for it, as gen_esp32part writes it.
func (p Partition) SubtypeName() string {
	if name, ok := nameOf(subtypeKeywords(p.Type), p.Subtype); ok {
		return name
	}
	return strconv.Itoa(int(p.Subtype))
}

// String describes the partition in one line, for messages.
func (p Partition) String() string {
	return fmt.Sprintf("%s (%s/%s) at 0x%x size 0x%x", p.Name, p.TypeName(), p.SubtypeName(), p.Offset, p.Size)
}

// keyword is one name of a type or subtype, as gen_esp32part knows it.
type keyword struct {
	name  string
	value uint8
}

// The keyword lists keep gen_esp32part's order: where two names share a
// value, the first is the one it prints.
var (
	typeKeywords = []keyword{
		{"bootloader", TypeBootloader},
		{"partition_table", TypePartitionTable},
		{"app", TypeApp},
		{"data", TypeData},
	}
	appSubtypeKeywords  = makeAppSubtypeKeywords()
	dataSubtypeKeywords = []keyword{
		{"ota", SubtypeDataOTA},
		{"phy", SubtypeDataPHY},
		{"nvs", SubtypeDataNVS},
		{"coredump", SubtypeDataCoredump},
		{"nvs_keys", SubtypeDataNVSKeys},
		{"efuse", SubtypeDataEFuse},
		{"undefined", SubtypeDataUndefined},
		{"esphttpd", SubtypeDataESPHTTPD},
		{"fat", SubtypeDataFAT},
		{"spiffs", SubtypeDataSPIFFS},
		{"littlefs", SubtypeDataLittleFS},
		{"tee_ota", SubtypeDataTEEOTA},
		{"tee_sec_stg", SubtypeDataTEESecStg},
	}
	bootloaderSubtypeKeywords = []keyword{
		{"primary", SubtypeBootloaderPrimary},
		{"ota", SubtypeBootloaderOTA},
		{"recovery", SubtypeBootloaderRecovery},
	}
	partitionTableSubtypeKeywords = []keyword{
		{"primary", SubtypePartitionTablePrimary},
		{"ota", SubtypePartitionTableOTA},
	}
)

func makeAppSubtypeKeywords() []keyword {
	kw := []keyword{{"factory", SubtypeAppFactory}, {"test", SubtypeAppTest}}
	for i := range 16 {
		kw = append(kw, keyword{fmt.Sprintf("ota_%d", i), SubtypeAppOTA0 + uint8(i)})
	}
	for i := range 2 {
		kw = append(kw, keyword{fmt.Sprintf("tee_%d", i), SubtypeAppTEE0 + uint8(i)})
	}
	return kw
}

// subtypeKeywords returns the subtype names of type t; custom types have none.
func subtypeKeywords(t uint8) []keyword {
	switch t {
	case TypeApp:
		return appSubtypeKeywords
	case TypeData:
		return dataSubtypeKeywords
	case TypeBootloader:
		return bootloaderSubtypeKeywords
	case TypePartitionTable:
		return partitionTableSubtypeKeywords
	}
	return nil
}

func nameOf(kw []keyword, v uint8) (string, bool) {
	for _, k := range kw {
		if k.value == v {
			return k.name, true
		}
	}
	return "", false
}

func valueOf(kw []keyword, name string) (uint8, bool) {
	for _, k := range kw {
		if k.name == name {
			return k.value, true
		}
	}
	return 0, false
}

func keywordNames(kw []keyword) string {
	s := ""
	for i, k := range kw {
		if i > 0 {
			s += ", "
		}
		s += k.name
	}
	return s
}
