package nvs

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// rtValue is what the model expects to read for one key.
type rtValue struct {
	t Type
	i int64
	u uint64
	b []byte
}

var (
	rtNamespaces = []string{"usmp", "cfg", "a"}
	rtKeys       = []string{"psk", "device_id", "k", "fifteen_chars_x"}
	rtIntTypes   = []Type{TypeU8, TypeI8, TypeU16, TypeI16, TypeU32, TypeI32, TypeU64, TypeI64}
)

// rtReader hands out the fuzz input a few bytes at a time (zeros at the
// end).
type rtReader struct{ b []byte }

func (r *rtReader) byte() byte {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *rtReader) n(k int) int { return int(r.byte()) % k }

// bytes returns n bytes expanded from one input byte, so that large values
// cost little input.
func (r *rtReader) bytes(n int) []byte {
	out := make([]byte, n)
	x := uint32(r.byte())*2654435761 + 1
	for i := range out {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		out[i] = byte(x)
	}
	return out
}

// editRoundTrip applies operations decoded from ops to base, one device
// session each, and after every operation reads the image back and compares
// it with a model of what was stored: the editor's writes read back exactly,
// and every other entry stays readable (R28 round trip).
func editRoundTrip(t *testing.T, base []byte, ops []byte, indexAll bool) {
	model := map[[2]string]rtValue{}
	img, err := ReadImage(base, ReadOptions{indexAll: indexAll})
	if err != nil || img.MountErr != nil {
		t.Fatalf("base: %v %v", err, img.MountErr)
	}
	for _, e := range img.Entries {
		model[[2]string{e.Namespace, e.Key}] = rtValue{e.Type, e.Int(), e.Uint(), e.Bytes()}
	}
	cur := base
	r := &rtReader{ops}
	for step := 0; step < 40 && len(r.b) > 0; step++ {
		ed, err := OpenEditor(cur, EditOptions{indexAll: indexAll})
		if err != nil {
			t.Fatalf("step %d: reopen: %v", step, err)
		}
		k := [2]string{rtNamespaces[r.n(len(rtNamespaces))], rtKeys[r.n(len(rtKeys))]}
		unsure := rtEdit(t, step, ed, r, model, k)
		cur = ed.Bytes()
		got := rtRead(t, step, cur, indexAll)
		if unsure {
			if _, ok := got[k]; !ok {
				delete(model, k)
			}
		}
		if len(got) != len(model) {
			t.Fatalf("step %d: read %d keys, model has %d", step, len(got), len(model))
		}
		for mk, mv := range model {
			gv, ok := got[mk]
			if !ok || gv.t != mv.t || gv.i != mv.i || gv.u != mv.u || !bytes.Equal(gv.b, mv.b) {
				t.Fatalf("step %d: %s/%s reads back wrong (present %v)", step, mk[0], mk[1], ok)
			}
		}
	}
}

// rtRead reads the image after an edit back as a model of its entries,
// which must all be readable and listed once.
func rtRead(t *testing.T, step int, b []byte, indexAll bool) map[[2]string]rtValue {
	t.Helper()
	img, err := ReadImage(b, ReadOptions{indexAll: indexAll})
	if err != nil || img.MountErr != nil {
		t.Fatalf("step %d: read back: %v %v", step, err, img.MountErr)
	}
	got := map[[2]string]rtValue{}
	for _, e := range img.Entries {
		gk := [2]string{e.Namespace, e.Key}
		if _, dup := got[gk]; dup {
			t.Fatalf("step %d: %v listed twice", step, e)
		}
		if e.Err != nil {
			t.Fatalf("step %d: %v unreadable: %v", step, e, e.Err)
		}
		got[gk] = rtValue{e.Type, e.Int(), e.Uint(), e.Bytes()}
	}
	return got
}

// rtEdit makes one random edit of key k (a string, a blob, an integer, or
// an erase) and records its effect in the model. unsure says that a blob
// write failed part-way: the old blob may be gone too (the library cleans
// up chunk indexes 0, 1, … whatever their version).
func rtEdit(t *testing.T, step int, ed *Editor, r *rtReader, model map[[2]string]rtValue, k [2]string) (unsure bool) {
	t.Helper()
	ns, key := k[0], k[1]
	var want rtValue
	var err error
	switch r.n(4) {
	case 0:
		v := bytes.ReplaceAll(r.bytes(r.n(200)), []byte{0}, []byte{'x'})
		err, want = ed.SetString(ns, key, string(v)), rtValue{t: TypeString, b: v}
	case 1:
		n := (int(r.byte())<<8 | int(r.byte())) % 6000
		v := r.bytes(n)
		err, want, unsure = ed.SetBlob(ns, key, v), rtValue{t: TypeBlob, b: v}, true
	case 2:
		want, err = rtSetInt(ed, r, ns, key)
	default:
		err = ed.Erase(ns, key)
		if _, ok := model[k]; ok && err != nil {
			t.Fatalf("step %d: erase of a stored key: %v", step, err)
		}
		if err != nil && !errors.Is(err, DeviceNotFound) {
			t.Fatalf("step %d: erase: %v", step, err)
		}
		delete(model, k)
		return false
	}
	switch {
	case err == nil:
		model[k] = want
		return false
	case errors.Is(err, DeviceNotEnoughSpace) || errors.Is(err, DeviceValueTooLong):
		// The old value stays (but see unsure).
		return unsure
	}
	t.Fatalf("step %d: set: %v", step, err)
	return false
}

// rtSetInt sets a random integer of a random type.
func rtSetInt(ed *Editor, r *rtReader, ns, key string) (rtValue, error) {
	typ := rtIntTypes[r.n(len(rtIntTypes))]
	var buf [8]byte
	copy(buf[:], r.bytes(8))
	u := binary.LittleEndian.Uint64(buf[:])
	bits := 8 * uint(typ.IntSize())
	if bits < 64 {
		u &= 1<<bits - 1
	}
	if typ.Signed() {
		v := int64(u<<(64-bits)) >> (64 - bits) // sign-extend
		return rtValue{t: typ, i: v}, ed.SetInt(ns, key, typ, v)
	}
	return rtValue{t: typ, u: u}, ed.SetUint(ns, key, typ, u)
}

func rtBases(t testing.TB) [][]byte {
	var out [][]byte
	for _, n := range []string{"base_empty.bin", "base_usmp.bin", "spread_pages.bin"} {
		b, err := os.ReadFile(filepath.Join(deviceDir, n))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzEditRoundTrip: any sequence of edits on a few base images reads back
// as a model of the edits says (R28: parse(serialize(x)) == x).
func FuzzEditRoundTrip(f *testing.F) {
	f.Add(byte(0), []byte("\x00\x00\x05hello\x01\x00\x01\x00\x20"))
	f.Add(byte(1), []byte("\x01\x00\x00\x13\x88\x03\x00\x00"))
	f.Add(byte(2), []byte("\x02\x01\x02\x07\x01\x02\x03\x04\x05\x06\x07\x08\x03\x01\x02"))
	bases := rtBases(f)
	f.Fuzz(func(t *testing.T, which byte, ops []byte) {
		editRoundTrip(t, bases[int(which)%len(bases)], ops, false)
	})
}

// TestEditRoundTripRandom runs the round-trip property on pseudo-random
// operation sequences: long enough to fill pages and force garbage
// collection.
func TestEditRoundTripRandom(t *testing.T) { testEditRoundTripRandom(t, false) }

// testEditRoundTripRandom is TestEditRoundTripRandom, with or without the
// page index.
func testEditRoundTripRandom(t *testing.T, indexAll bool) {
	bases := rtBases(t)
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 60; i++ {
		ops := make([]byte, 200)
		for k := range ops {
			ops[k] = byte(rng.Uint32())
		}
		editRoundTrip(t, bases[i%len(bases)], ops, indexAll)
	}
}
