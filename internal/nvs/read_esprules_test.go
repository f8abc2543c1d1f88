package nvs

// Load and read rules of ESP-IDF's NVS library that the device images do
// not exercise, each pinned on a small hand-built image. Every case names
// the library logic it checks (components/nvs_flash/src: nvs_page.cpp,
// nvs_pagemanager.cpp, nvs_storage.cpp, nvs_types.cpp, nvs_item_hash_list.cpp).

import (
	"encoding/binary"
	"errors"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// erImage is a hand-built partition image.
type erImage []byte

func erNew(pages int) erImage {
	b := make(erImage, pages*PageSize)
	for i := range b {
		b[i] = 0xFF
	}
	return b
}

// header writes a page header (state, sequence number, version) with a
// valid CRC.
func (b erImage) header(p int, state, seq uint32, ver byte) {
	h := b[p*PageSize : p*PageSize+HeaderSize]
	binary.LittleEndian.PutUint32(h[0:4], state)
	binary.LittleEndian.PutUint32(h[4:8], seq)
	h[8] = ver
	binary.LittleEndian.PutUint32(h[28:32], HeaderCRC(h))
}

func (b erImage) entry(p, i int) []byte {
	off := p*PageSize + FirstEntryOffset + i*EntrySize
	return b[off : off+EntrySize]
}

func (b erImage) state(p, i int, st uint8) {
	SetEntryState(b[p*PageSize+BitmapOffset:p*PageSize+BitmapOffset+BitmapSize], i, st)
}

// item writes a one-entry item (an integer or a blob index) holding data in
// its 8 value bytes, and marks it written.
func (b erImage) item(p, i int, ns uint8, t Type, key string, data []byte) {
	e := b.entry(p, i)
	e[0], e[1], e[2], e[3] = ns, byte(t), 1, 0xFF
	clear(e[8:24])
	copy(e[8:23], key)
	for k := 24; k < 32; k++ {
		e[k] = 0xFF
	}
	copy(e[24:32], data)
	binary.LittleEndian.PutUint32(e[4:8], EntryCRC(e))
	b.state(p, i, EntryWritten)
}

// varItem writes a string, version 1 blob or blob chunk with its payload,
// marks its span written and returns the entry index after it.
func (b erImage) varItem(p, i int, ns uint8, t Type, key string, chunk uint8, payload []byte) int {
	span := 1 + (len(payload)+EntrySize-1)/EntrySize
	e := b.entry(p, i)
	e[0], e[1], e[2], e[3] = ns, byte(t), byte(span), chunk
	clear(e[8:24])
	copy(e[8:23], key)
	binary.LittleEndian.PutUint16(e[24:26], uint16(len(payload)))
	binary.LittleEndian.PutUint16(e[26:28], 0xFFFF)
	binary.LittleEndian.PutUint32(e[28:32], CRC32(payload))
	binary.LittleEndian.PutUint32(e[4:8], EntryCRC(e))
	b.state(p, i, EntryWritten)
	for k := 1; k < span; k++ {
		d := b.entry(p, i+k)
		copy(d, payload[(k-1)*EntrySize:min(len(payload), k*EntrySize)])
		b.state(p, i+k, EntryWritten)
	}
	return i + span
}

func (b erImage) blobIndex(p, i int, ns uint8, key string, size uint32, count, start uint8) {
	var d [8]byte
	binary.LittleEndian.PutUint32(d[0:4], size)
	d[4], d[5], d[6], d[7] = count, start, 0xFF, 0xFF
	b.item(p, i, ns, TypeBlobIndex, key, d[:])
}

// erActive returns a 3-page image whose page 0 is ACTIVE (seq 0) and
// defines namespace "a" = 1 at entry 0.
func erActive() erImage {
	b := erNew(3)
	b.header(0, PageStateActive, 0, 0xFE)
	b.item(0, 0, 0, TypeU8, "a", []byte{1})
	return b
}

func TestReadESPIDFRules(t *testing.T) {
	t.Parallel()
	const notFound = "!ERR:ESP_ERR_NVS_NOT_FOUND"
	cases := []struct {
		name     string
		build    func() erImage
		readOnly bool
		mountErr error
		nss      string   // "name=index ..." of Image.Namespaces
		want     []string // expectedLines of Image.Entries, sorted
	}{
		{
			// Storage::init loads namespaces with
			// while (p.findItem(NS_INDEX, U8, nullptr, ...) == ESP_OK);
			// Page::findItem returns TYPE_MISMATCH for a namespace-0 item of
			// another type (only an NS_ANY + nullptr-key search skips it),
			// which ends the scan of that page: "b" is never loaded.
			name: "namespace scan stops at a non-U8 item in namespace 0",
			build: func() erImage {
				b := erActive()
				n := b.varItem(0, 1, 0, TypeString, "junk", 0xFF, []byte("x\x00"))
				b.item(0, n, 0, TypeU8, "b", []byte{2})
				b.item(0, n+1, 1, TypeU8, "x", []byte{5})
				b.item(0, n+2, 2, TypeU8, "y", []byte{6})
				return b
			},
			nss:  "a=1",
			want: []string{"a\tx\tu8\t5", "a\ty\tu8\t" + notFound},
		},
		{
			// Page::mLoadEntryTable (ACTIVE): after mHashList.insert(item, i),
			// duplicateIndex = mHashList.find(0, item) matches on the 24-bit
			// hash of (ns, key, chunk) alone (HashList::find), and an earlier
			// index is erased: two different keys whose hashes collide
			// ("c874", "c200705": 0x0715d1) leave only the later one.
			name: "hash collision on the active page erases the older key",
			build: func() erImage {
				b := erActive()
				b.item(0, 1, 1, TypeU8, "c874", []byte{1})
				b.item(0, 2, 1, TypeU8, "c200705", []byte{2})
				return b
			},
			nss:  "a=1",
			want: []string{"a\tc200705\tu8\t2"},
		},
		{
			// The same rule: the hash (Item::calculateCrc32WithoutValue) does
			// not cover the datatype, so an older u8 and a newer u16 of one
			// key on the active page are duplicates.
			name: "same key with another type on the active page: older erased",
			build: func() erImage {
				b := erActive()
				b.item(0, 1, 1, TypeU8, "k", []byte{1})
				b.item(0, 2, 1, TypeU16, "k", []byte{2, 0})
				return b
			},
			nss:  "a=1",
			want: []string{"a\tk\tu16\t2"},
		},
		{
			// mLoadEntryTable's FULL/FREEING branch only fills the hash list;
			// PageManager::load only removes duplicates of the last item of
			// the newest page. Both copies stay listed, and nvs_get_u8 (first
			// match in page order) returns the first for both.
			name: "duplicates inside a full page are kept",
			build: func() erImage {
				b := erNew(3)
				b.header(0, PageStateFull, 0, 0xFE)
				b.item(0, 0, 0, TypeU8, "a", []byte{1})
				b.item(0, 1, 1, TypeU8, "k", []byte{1})
				b.item(0, 2, 1, TypeU8, "k", []byte{2})
				b.header(1, PageStateActive, 1, 0xFE)
				return b
			},
			nss:  "a=1",
			want: []string{"a\tk\tu8\t1", "a\tk\tu8\t1"},
		},
		{
			// Storage::eraseMismatchedBlobIndexes counts every chunk in
			// [chunkStart, VER_1_OFFSET): chunks 0 and 5 give count 2 and size
			// 10, so the index stays; eraseOrphanDataBlobs then erases chunk 5
			// (outside [0, 2)). readMultiPageBlob misses chunk 1, erases the
			// blob and fails NVS_ASSERT_OR_RETURN(offset == dataSize, ESP_FAIL).
			name: "blob with a missing chunk reads as ESP_FAIL",
			build: func() erImage {
				b := erActive()
				n := b.varItem(0, 1, 1, TypeBlobData, "bl", 0, []byte("hello"))
				n = b.varItem(0, n, 1, TypeBlobData, "bl", 5, []byte("world"))
				b.blobIndex(0, n, 1, "bl", 10, 2, 0)
				return b
			},
			nss:  "a=1",
			want: []string{"a\tbl\tblob\t!ERR:ESP_FAIL"},
		},
		{
			// eraseMismatchedBlobIndexes: observed size 5 != index size 6, so
			// the index is erased and eraseOrphanDataBlobs erases its chunk.
			name: "blob index with a wrong size vanishes with its chunks",
			build: func() erImage {
				b := erActive()
				n := b.varItem(0, 1, 1, TypeBlobData, "bl", 0, []byte("hello"))
				b.blobIndex(0, n, 1, "bl", 6, 1, 0)
				b.item(0, n+1, 1, TypeU8, "z", []byte{9})
				return b
			},
			nss:  "a=1",
			want: []string{"a\tz\tu8\t9"},
		},
		{
			// Storage::getItemDataSize(BLOB) falls back from BLOB_IDX to
			// BLOB, and Storage::readItem(BLOB) falls back to the version 1
			// item when readMultiPageBlob returns NOT_FOUND.
			name: "version 1 blob is read by nvs_get_blob",
			build: func() erImage {
				b := erActive()
				b.varItem(0, 1, 1, TypeBlob, "bl", 0xFF, []byte("old"))
				return b
			},
			nss:  "a=1",
			want: []string{"a\tbl\tblob\t6f6c64"},
		},
		{
			// ...but a BLOB_IDX of the same key wins (getItemDataSize and
			// readItem try it first), so the legacy entry reads the v2 value.
			name: "version 1 blob shadowed by a version 2 blob",
			build: func() erImage {
				b := erNew(4)
				b.header(0, PageStateFull, 0, 0xFE)
				b.item(0, 0, 0, TypeU8, "a", []byte{1})
				b.varItem(0, 1, 1, TypeBlob, "bl", 0xFF, []byte("old"))
				b.header(1, PageStateActive, 1, 0xFE)
				n := b.varItem(1, 0, 1, TypeBlobData, "bl", 0, []byte("new"))
				b.blobIndex(1, n, 1, "bl", 3, 1, 0)
				b.item(1, n+1, 1, TypeU8, "z", []byte{9})
				return b
			},
			nss:  "a=1",
			want: []string{"a\tbl\tblob\t6e6577", "a\tbl\tblob\t6e6577", "a\tz\tu8\t9"},
		},
		{
			// Page::load: a header with a valid CRC and mVersion < NVS_VERSION
			// (0xFE) returns ESP_ERR_NVS_NEW_VERSION_FOUND, failing the mount.
			name: "older format version fails the mount",
			build: func() erImage {
				b := erActive()
				b.header(1, PageStateFull, 1, 0xFD)
				return b
			},
			mountErr: DeviceNewVersionFound,
		},
		{
			// Page::load checks the version before its state switch, so even
			// a page whose state word is CORRUPT fails the mount.
			name: "version is checked before the page state",
			build: func() erImage {
				b := erActive()
				b.header(1, PageStateCorrupt, 1, 0xFD)
				return b
			},
			mountErr: DeviceNewVersionFound,
		},
		{
			// Page::load: a bad header CRC is tested first; the page becomes
			// CORRUPT and its version byte is never looked at.
			name: "version byte of a page with a bad header CRC is ignored",
			build: func() erImage {
				b := erActive()
				b.item(0, 1, 1, TypeU8, "k", []byte{7})
				b.header(1, PageStateFull, 1, 0xFD)
				b[PageSize+28] ^= 1
				return b
			},
			nss:  "a=1",
			want: []string{"a\tk\tu8\t7"},
		},
		{
			// Page::load: an unknown state word with a valid CRC falls to the
			// switch default (CORRUPT); getSeqNumber fails, so PageManager::load
			// puts the page in the free list and its items vanish.
			name: "unknown page state: page is corrupt and ignored",
			build: func() erImage {
				b := erActive()
				b.header(1, 0xFFFFFF00, 1, 0xFE)
				b.item(1, 0, 1, TypeU8, "gone", []byte{3})
				return b
			},
			nss:  "a=1",
			want: nil,
		},
		{
			// mLoadEntryTable (ACTIVE): an entry in the illegal 0b01 state is
			// erased (eraseEntryAndSpan), whatever it holds.
			name: "illegal entry state on the active page is erased",
			build: func() erImage {
				b := erActive()
				b.item(0, 1, 1, TypeU8, "k", []byte{1})
				b.state(0, 1, 1)
				b.item(0, 2, 1, TypeU8, "m", []byte{2})
				return b
			},
			nss:  "a=1",
			want: []string{"a\tm\tu8\t2"},
		},
		{
			// Page::readItem: a payload whose CRC does not match is erased
			// and the read fails with NOT_FOUND; the iterator still lists it.
			name: "string with a bad data CRC is listed but unreadable",
			build: func() erImage {
				b := erActive()
				b.varItem(0, 1, 1, TypeString, "s", 0xFF, []byte("hi\x00"))
				b.entry(0, 2)[0] ^= 1
				return b
			},
			nss:  "a=1",
			want: []string{"a\ts\tstr\t" + notFound},
		},
		{
			// PageManager::load: outside read-only mode the partition needs a
			// free page (ESP_ERR_NVS_NO_FREE_PAGES).
			name: "no free page fails the mount",
			build: func() erImage {
				b := erNew(2)
				b.header(0, PageStateFull, 0, 0xFE)
				b.item(0, 0, 0, TypeU8, "a", []byte{1})
				b.header(1, PageStateActive, 1, 0xFE)
				b.item(1, 0, 1, TypeU8, "k", []byte{1})
				return b
			},
			mountErr: DeviceNoFreePages,
		},
		{
			// ...a read-only partition skips that check (and the power-loss
			// repairs) and mounts.
			name: "no free page mounts read-only",
			build: func() erImage {
				b := erNew(2)
				b.header(0, PageStateFull, 0, 0xFE)
				b.item(0, 0, 0, TypeU8, "a", []byte{1})
				b.header(1, PageStateActive, 1, 0xFE)
				b.item(1, 0, 1, TypeU8, "k", []byte{1})
				return b
			},
			readOnly: true,
			nss:      "a=1",
			want:     []string{"a\tk\tu8\t1"},
		},
		{
			// mLoadEntryTable (FULL): an entry with a bad header CRC is erased
			// (eraseEntryAndSpan); on a read-only partition the bitmap write
			// fails (ESP_ERR_NOT_ALLOWED), Page::load returns it and the mount
			// fails.
			name: "read-only mount fails when a repair is needed",
			build: func() erImage {
				b := erNew(3)
				b.header(0, PageStateFull, 0, 0xFE)
				b.item(0, 0, 0, TypeU8, "a", []byte{1})
				b.item(0, 1, 1, TypeU8, "k", []byte{1})
				b.entry(0, 1)[24] ^= 1
				return b
			},
			readOnly: true,
			mountErr: DeviceNotAllowed,
		},
		{
			// PageManager::load, FREEING recovery: the newest page is ACTIVE
			// (a partial copy), so it is erased and returned to the free list,
			// a fresh page is activated and Page::copyItems copies the
			// FREEING page's items into it before the FREEING page is erased.
			name: "interrupted GC with a partial copy on the active page",
			build: func() erImage {
				b := erNew(4)
				b.header(0, PageStateFreeing, 0, 0xFE)
				b.item(0, 0, 0, TypeU8, "a", []byte{1})
				b.item(0, 1, 1, TypeU8, "k", []byte{1})
				b.header(1, PageStateActive, 1, 0xFE)
				b.item(1, 0, 0, TypeU8, "a", []byte{1})
				return b
			},
			nss:  "a=1",
			want: []string{"a\tk\tu8\t1"},
		},
		{
			// The same recovery when the newest page is FULL: it is kept (only
			// an ACTIVE newest page is erased) and the copy goes to a new page.
			name: "interrupted GC with a full newest page",
			build: func() erImage {
				b := erNew(4)
				b.header(0, PageStateFreeing, 0, 0xFE)
				b.item(0, 0, 0, TypeU8, "a", []byte{1})
				b.item(0, 1, 1, TypeU8, "k", []byte{1})
				b.header(1, PageStateFull, 1, 0xFE)
				b.item(1, 0, 1, TypeU8, "m", []byte{2})
				return b
			},
			nss:  "a=1",
			want: []string{"a\tk\tu8\t1", "a\tm\tu8\t2"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			img, err := ReadImage(tc.build(), ReadOptions{ReadOnly: tc.readOnly})
			if err != nil {
				t.Fatal(err)
			}
			if !errors.Is(img.MountErr, tc.mountErr) || (tc.mountErr == nil) != (img.MountErr == nil) {
				t.Fatalf("mount error %v, want %v", img.MountErr, tc.mountErr)
			}
			var nss []string
			for _, n := range img.Namespaces {
				nss = append(nss, n.Name+"="+strconv.Itoa(int(n.Index)))
			}
			if got := strings.Join(nss, " "); got != tc.nss {
				t.Errorf("namespaces %q, want %q", got, tc.nss)
			}
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if got := expectedLines(img.Entries); !slices.Equal(got, want) {
				t.Errorf("entries:\n%s", diffLines(got, want))
			}
		})
	}
}
