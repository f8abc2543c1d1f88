package provision

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/usmp/usmp-psk/internal/nvs"
	"github.com/usmp/usmp-psk/internal/nvs/nvscrypt"
	"github.com/usmp/usmp-psk/internal/psk"
	"github.com/usmp/usmp-psk/internal/rawfile"
	"github.com/usmp/usmp-psk/internal/registry"
	"github.com/usmp/usmp-psk/internal/secfile"
)

// BatchSpec is a factory batch (design §5, §8; issue #7).
type BatchSpec struct {
	IDs    IDList
	Shard  Shard
	Source Source // Derive or Random
	Master *psk.Secret
	// Out is the directory the batch owns: DIR/<file name>.bin images,
	// DIR/keys/<file name>.bin per-device keys, DIR/manifest.json.
	Out string
	// Image: layout, size and version of each image; Keys encrypts every
	// image with one nvs_keys partition.
	Image ImageOptions
	// PerDeviceKeys gives every device its own random nvs_keys partition
	// (DIR/keys/<file name>.bin); a re-run reuses the existing ones.
	PerDeviceKeys bool
	// Offset is the flash offset of the nvs partition (for the manifest).
	Offset int64
	// Jobs is the number of image writers (default: the number of CPUs).
	Jobs int
	// Chunk is how many devices are recorded per registry transaction
	// before their images are written (default 16384). It bounds memory.
	Chunk int
	// Rand is the source of per-device encryption keys (crypto/rand).
	Rand io.Reader
	// Progress is called with the number of devices done (may be nil).
	Progress func(done int)
	// AllowUnignored is --allow-unignored for the git guard.
	AllowUnignored bool
	// Warn receives warnings.
	Warn func(string)
	// StepHook, when set, is called before each chunk's images are
	// written ("before-images", with the path of the chunk's first image)
	// and at the steps of the manifest's write (secfile.Options.StepHook).
	// It is the seam of the end-to-end tests, which crash the process or
	// hold it there until they interrupt it; production never sets it.
	StepHook func(step, path string)

	// write writes an image's or keys file's bytes to the file opened for
	// them; nil is (*os.File).Write. Tests inject a disk that fills up.
	write func(f *os.File, data []byte) (int, error)
}

// ErrOutBusy reports an output directory that another batch is writing.
var ErrOutBusy = errors.New("another batch is writing to this output directory (a batch owns its directory: give each batch and each shard its own --out)")

// ManifestDevice is one device of manifest.json (design §5): no key bytes.
type ManifestDevice struct {
	ID     string          `json:"id"`
	Image  string          `json:"image"`
	SHA256 string          `json:"sha256"`
	KCV    string          `json:"kcv"`
	Epoch  uint32          `json:"epoch"`
	Source registry.Source `json:"source"`
	Offset int64           `json:"offset"`
	Keys   string          `json:"keys,omitempty"`
}

// Manifest is the head of manifest.json; Devices follow in batch order.
type Manifest struct {
	Version   int    `json:"version"`
	Namespace string `json:"namespace"`
	IDKey     string `json:"id_key"`
	PSKKey    string `json:"psk_key"`
	Size      int    `json:"size"`
	Offset    int64  `json:"offset"`
	Encrypted string `json:"encryption"` // "none", "shared-keys", "per-device-keys"
	Shard     string `json:"shard,omitempty"`
	Total     int    `json:"total"` // devices in the whole batch (all shards)
	Count     int    `json:"count"` // devices in this manifest
}

// BatchResult summarizes a batch.
type BatchResult struct {
	Devices  int    `json:"devices"`
	New      int    `json:"new"`
	Existing int    `json:"existing"`
	Out      string `json:"out"`
	Manifest string `json:"manifest"`
	Registry string `json:"registry"`
}

// PlannedDevice is one line of a dry run.
type PlannedDevice struct {
	Position int    `json:"position"`
	ID       string `json:"id"`
	Image    string `json:"image"`
	Keys     string `json:"keys,omitempty"`
}

// Plan lists what a batch would write, in order, without writing anything.
// It holds one device at a time, however large the batch.
func Plan(spec BatchSpec, visit func(PlannedDevice) error) error {
	total := spec.IDs.Len()
	for p := spec.Shard.first(); p < total; p += spec.Shard.step() {
		id := spec.IDs.ID(p)
		d := PlannedDevice{Position: p, ID: id, Image: ImageName(id)}
		if spec.PerDeviceKeys {
			d.Keys = filepath.ToSlash(filepath.Join("keys", ImageName(id)))
		}
		if err := visit(d); err != nil {
			return err
		}
	}
	return nil
}

// ImageName is the image file name of a device (design §3: ':' → %3A).
func ImageName(id string) string { return psk.DeviceFileName(id) + ".bin" }

func (s *BatchSpec) jobs() int {
	if s.Jobs > 0 {
		return s.Jobs
	}
	return runtime.GOMAXPROCS(0)
}

func (s *BatchSpec) chunk() int {
	if s.Chunk > 0 {
		return s.Chunk
	}
	return 16384
}

func (s *BatchSpec) manifestHead(count int) Manifest {
	m := Manifest{Version: 1, Namespace: s.Image.Namespace, IDKey: s.Image.IDKey, PSKKey: s.Image.PSKKey,
		Size: s.Image.size(), Offset: s.Offset, Encrypted: "none", Total: s.IDs.Len(), Count: count}
	switch {
	case s.PerDeviceKeys:
		m.Encrypted = "per-device-keys"
	case s.Image.Keys != nil:
		m.Encrypted = "shared-keys"
	}
	if s.Shard.N > 1 {
		m.Shard = fmt.Sprintf("%d/%d", s.Shard.I, s.Shard.N)
	}
	return m
}

// job is one device of a chunk.
type job struct {
	id  string
	key *psk.Secret
	dev registry.Device
	out ManifestDevice
	err error
}

// RunBatch provisions the batch: for each chunk of devices it records them
// in the registry (durably, before any of their images exist), then writes
// their images in parallel, directly at 0600 (no temp file or fsync per
// image: the batch owns its directory, and a re-run rewrites every image of
// the batch, R8), then streams their manifest entries. One sync at the end.
// A re-run after a crash or an interrupt finishes what is missing; images,
// manifest and registry come out byte for byte the same.
func RunBatch(ctx context.Context, reg *registry.Registry, spec BatchSpec) (*BatchResult, error) {
	if spec.Source != Derive && spec.Source != Random {
		return nil, errors.New("a batch derives or makes random keys")
	}
	if spec.Image.Base != nil {
		return nil, errors.New("a batch writes fresh images")
	}
	keysDir := filepath.Join(spec.Out, "keys")
	positions := spec.Shard.Positions(spec.IDs.Len())
	if err := spec.checkLocations(positions, keysDir); err != nil {
		return nil, err
	}
	b := &batchRun{ctx: ctx, reg: reg, spec: &spec, positions: positions, keysDir: keysDir, unlock: func() {},
		res: &BatchResult{Devices: len(positions), Out: spec.Out, Manifest: filepath.Join(spec.Out, "manifest.json"), Registry: reg.Location()}}
	defer b.close()
	if err := b.writeChunks(); err != nil {
		return nil, err
	}
	if b.mw == nil {
		// No chunk: an empty shard still gets its directory and manifest.
		if err := b.start(); err != nil {
			return nil, err
		}
	}
	if err := b.mw.commit(); err != nil {
		return nil, err
	}
	if err := syncAll(spec.Out); err != nil {
		return nil, fmt.Errorf("sync %s: %w", spec.Out, err)
	}
	return b.res, nil
}

// checkLocations applies the location rules to every secret file the
// batch writes (R7, R19), before anything is recorded or created: a
// refused batch leaves no directory. (Directories are never removed
// again: another process may be using them already.) The images and the
// per-device keys files are written directly (writeDirect), without a
// guard of their own: the first of each kind gets the full check
// (directory modes, and the warning for an excludes-only rule), then
// GitGuardAll checks all of them with one git run per directory, so a rule
// naming single files cannot let the others through. The manifest holds
// no keys (R18): no guard for it.
func (s *BatchSpec) checkLocations(positions []int, keysDir string) error {
	secOpts := secfile.Options{AllowUnignored: s.AllowUnignored, OneOfMany: true, Warn: s.Warn}
	probes := []string{filepath.Join(s.Out, ImageName(s.IDs.ID(0)))}
	if s.PerDeviceKeys {
		probes = append(probes, filepath.Join(keysDir, ImageName(s.IDs.ID(0))))
	}
	for _, probe := range probes {
		if err := secfile.CheckMkdir(probe, secOpts); err != nil {
			return err
		}
	}
	names := make([]string, len(positions))
	for i, p := range positions {
		names[i] = ImageName(s.IDs.ID(p))
	}
	// The probes above already warned under --allow-unignored.
	allOpts := secfile.Options{AllowUnignored: s.AllowUnignored}
	if err := secfile.GitGuardAll(s.Out, names, allOpts); err != nil {
		return err
	}
	if s.PerDeviceKeys {
		return secfile.GitGuardAll(keysDir, names, allOpts)
	}
	return nil
}

// batchRun is one RunBatch in progress: its output, once started, and the
// lock on its directory.
type batchRun struct {
	ctx       context.Context
	reg       *registry.Registry
	spec      *BatchSpec
	positions []int
	keysDir   string
	res       *BatchResult
	mw        *manifestWriter // nil until started
	unlock    func()
}

// start creates the output directories, locks the batch's directory and
// starts its manifest. It runs once the first chunk is recorded: a batch
// that the registry refuses (its location rules, the lock, a conflict)
// creates nothing either.
func (b *batchRun) start() error {
	spec := b.spec
	if err := secfile.MkdirAll(spec.Out); err != nil {
		return fmt.Errorf("output directory: %w", err)
	}
	var err error
	if b.unlock, err = takeOut(spec.Out, b.res.Manifest); err != nil {
		return err
	}
	if spec.PerDeviceKeys {
		if err := secfile.MkdirAll(b.keysDir); err != nil {
			return fmt.Errorf("keys directory: %w", err)
		}
	}
	b.mw, err = newManifestWriter(b.res.Manifest, spec.manifestHead(len(b.positions)), *spec)
	return err
}

// close drops an uncommitted manifest, so that no partial one is
// published, and unlocks the directory.
func (b *batchRun) close() {
	if b.mw != nil {
		b.mw.abort()
	}
	b.unlock()
}

// record records the devices of one chunk, unless the run was cancelled.
func (b *batchRun) record(bounds [2]int) recorded {
	if err := b.ctx.Err(); err != nil {
		return recorded{err: err}
	}
	return b.spec.record(b.ctx, b.reg, b.positions[bounds[0]:bounds[1]])
}

// writeChunks records the devices and writes their images chunk by chunk.
// Chunks grow from small to spec.chunk(): the first images start early,
// and while the workers write chunk k, chunk k+1 is being recorded (its
// images are written only once it is durable).
func (b *batchRun) writeChunks() error {
	bounds := chunkBounds(len(b.positions), b.spec.chunk())
	next := make(chan recorded, 1)
	pending := len(bounds) > 0
	if pending {
		go func() { next <- b.record(bounds[0]) }()
	}
	defer func() {
		// On an early return, wait for the recording in flight and wipe
		// its keys.
		if pending {
			r := <-next
			r.destroy()
		}
	}()
	for k := range bounds {
		r := <-next
		pending = false
		if r.err != nil {
			return r.err
		}
		if k+1 < len(bounds) {
			pending = true
			go func(bd [2]int) { next <- b.record(bd) }(bounds[k+1])
		}
		if err := b.writeChunk(k == 0, r, bounds[k][0]); err != nil {
			return err
		}
	}
	return nil
}

// writeChunk writes a recorded chunk whose first device is the batch's
// done-th: the output is started with the first chunk, then the images are
// written (and the chunk's keys wiped), then the manifest entries.
func (b *batchRun) writeChunk(first bool, r recorded, done int) error {
	if first {
		if err := b.start(); err != nil {
			r.destroy()
			return err
		}
	}
	b.res.New += r.added
	b.res.Existing += r.existing
	spec := b.spec
	if spec.StepHook != nil {
		spec.StepHook("before-images", filepath.Join(spec.Out, ImageName(r.jobs[0].id)))
	}
	err := spec.writeImages(b.ctx, r.jobs, b.keysDir, func(n int) {
		if spec.Progress != nil {
			spec.Progress(done + n)
		}
	})
	r.destroy()
	if err != nil {
		return err
	}
	for i := range r.jobs {
		if err := b.mw.add(r.jobs[i].out); err != nil {
			return err
		}
	}
	return nil
}

// takeOut locks the batch's output directory and, holding the lock, removes
// the temporary manifests that killed runs left there (R8, R16: cleaned up
// on the next run; they accumulated, issue 13 item 3). Unlocked, on a file
// system without flock, it removes nothing: the temporary file could be
// another batch's.
func takeOut(dir, manifest string) (unlock func(), err error) {
	unlock, locked, err := lockOut(dir)
	if err != nil {
		return func() {}, err
	}
	if locked {
		if err := secfile.RemoveStaleTemps(manifest); err != nil {
			unlock()
			return func() {}, fmt.Errorf("remove the temporary files of an earlier run: %w", err)
		}
	}
	return unlock, nil
}

// recorded is one chunk recorded in the registry.
type recorded struct {
	jobs            []job
	added, existing int
	err             error
}

func (r recorded) destroy() {
	for i := range r.jobs {
		r.jobs[i].key.Destroy()
	}
}

// chunkBounds cuts n positions into chunks of 512, 1024, … up to maxChunk.
func chunkBounds(n, maxChunk int) [][2]int {
	var out [][2]int
	size := min(512, maxChunk)
	for start := 0; start < n; {
		end := min(start+size, n)
		out = append(out, [2]int{start, end})
		start = end
		size = min(size*2, maxChunk)
	}
	return out
}

// record adds the devices at positions to the registry (keeping those it
// already has) and returns their keys.
func (s *BatchSpec) record(ctx context.Context, reg *registry.Registry, positions []int) recorded {
	reqs := make([]registry.AddRequest, 0, len(positions))
	for _, p := range positions {
		ks := registry.Random()
		if s.Source == Derive {
			ks = registry.Derived(s.Master, 0)
		}
		reqs = append(reqs, registry.AddRequest{ID: s.IDs.ID(p), Key: ks})
	}
	added, err := reg.AddMany(ctx, reqs, registry.AddOptions{Event: registry.EventBatch, KeepExisting: true})
	if err != nil {
		var ce *registry.DeviceError
		if errors.As(err, &ce) && errors.Is(err, registry.ErrDeviceExists) {
			dev, _ := reg.Show(ctx, ce.ID)
			return recorded{err: &ConflictError{ID: ce.ID, Record: dev, Err: err}}
		}
		return recorded{err: err}
	}
	r := recorded{jobs: make([]job, len(added))}
	for i := range added {
		r.jobs[i] = job{id: reqs[i].ID, key: added[i].Key, dev: added[i].Device}
		if added[i].Existing {
			r.existing++
		} else {
			r.added++
		}
	}
	return r
}

// writeImages builds and writes the images of one chunk with spec.jobs()
// workers, each with its own image buffer.
func (s *BatchSpec) writeImages(ctx context.Context, jobs []job, keysDir string, progress func(int)) error {
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		next    int
		doneCnt int
		first   error
	)
	umask := currentUmask()
	worker := func() {
		defer wg.Done()
		buf := make([]byte, 0, s.Image.size())
		for {
			mu.Lock()
			if first != nil || next >= len(jobs) || ctx.Err() != nil {
				if first == nil && ctx.Err() != nil {
					first = ctx.Err()
				}
				mu.Unlock()
				return
			}
			j := &jobs[next]
			next++
			mu.Unlock()
			j.err = s.safeWriteOne(j, buf, keysDir, umask)
			mu.Lock()
			doneCnt++
			if j.err != nil && first == nil {
				first = j.err
			}
			n := doneCnt
			mu.Unlock()
			progress(n)
		}
	}
	for i := 0; i < s.jobs(); i++ {
		wg.Add(1)
		go worker()
	}
	wg.Wait()
	return first
}

// errWorkerPanic replaces a worker's panic: its value and stack could hold
// key material, so neither is shown (R12).
var errWorkerPanic = errors.New("internal error while writing an image (a bug); no details are shown because they could contain key material")

// safeWriteOne is writeOne with a panic turned into an error: a panic in a
// worker goroutine would otherwise crash the process with a traceback.
func (s *BatchSpec) safeWriteOne(j *job, buf []byte, keysDir string, umask int) (err error) {
	defer func() {
		if recover() != nil {
			err = errWorkerPanic
		}
	}()
	return s.writeOne(j, buf, keysDir, umask)
}

// writeOne builds one image into buf and writes it.
func (s *BatchSpec) writeOne(j *job, buf []byte, keysDir string, umask int) error {
	name := ImageName(j.id)
	img, err := nvs.AppendUSMP(buf[:0], nvs.USMPImage{USMPLayout: s.Image.Layout, DeviceID: j.id, PSK: j.key.Expose(), Size: s.Image.size(), Version: s.Image.version()})
	if err != nil {
		return fmt.Errorf("device %s: %w", j.id, err)
	}
	defer psk.Wipe(img)
	keys := s.Image.Keys
	if s.PerDeviceKeys {
		k, rel, err := s.deviceKeys(keysDir, name, umask)
		if err != nil {
			return fmt.Errorf("device %s: %w", j.id, err)
		}
		defer k.Destroy()
		keys = k
		j.out.Keys = rel
	}
	if keys != nil {
		enc, err := nvscrypt.EncryptImage(img, keys)
		if err != nil {
			return fmt.Errorf("device %s: %w", j.id, err)
		}
		copy(img, enc)
	}
	sum := sha256.Sum256(img)
	if err := s.writeDirect(filepath.Join(s.Out, name), img, umask); err != nil {
		return err
	}
	j.out.ID, j.out.Image, j.out.SHA256 = j.id, name, hex.EncodeToString(sum[:])
	j.out.KCV, j.out.Epoch, j.out.Source, j.out.Offset = j.dev.KCV, j.dev.Epoch, j.dev.Source, s.Offset
	return nil
}

// deviceKeys returns the device's nvs_keys partition: the existing file of
// an earlier run of the batch when it is valid, otherwise new random keys.
func (s *BatchSpec) deviceKeys(keysDir, name string, umask int) (*nvscrypt.Keys, string, error) {
	path := filepath.Join(keysDir, name)
	rel := filepath.ToSlash(filepath.Join("keys", name))
	if b, err := readDirect(path); err != nil {
		return nil, "", err
	} else if b != nil {
		k, perr := nvscrypt.ParseKeysPartition(b)
		psk.Wipe(b)
		if perr == nil {
			return k, rel, nil
		}
		// A keys file cut short by a crash: replace it (its image is
		// rewritten below with the new keys).
	}
	k, err := nvscrypt.GenerateKeys(s.Rand)
	if err != nil {
		return nil, "", err
	}
	part := k.Partition()
	defer psk.Wipe(part)
	if err := s.writeDirect(path, part, umask); err != nil {
		k.Destroy()
		return nil, "", err
	}
	return k, rel, nil
}

// regularOrMissing refuses a path that exists and is not a regular file.
func regularOrMissing(path string) error {
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return err
	case !fi.Mode().IsRegular():
		return fmt.Errorf("%s: not a regular file (%v); refusing to read or write a secret through it", path, fi.Mode().Type())
	}
	return nil
}

// readDirect reads a batch file of an earlier run in place; nil, nil when
// there is none. Like writeDirect it refuses anything but a regular file.
func readDirect(path string) ([]byte, error) {
	if err := regularOrMissing(path); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDONLY|oNoFollow, 0o600) // no O_CREATE: the mode is unused
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// writeDirect writes a batch file in place at mode 0600: a new file is
// created exclusively; an existing one (a re-run) is truncated and made
// 0600 (R5, R6's batch exception). A file it fails to finish — a full
// disk, an I/O error — is removed: a partial image must not stay behind
// looking like a finished one (R8; issue 13 item 3).
func (s *BatchSpec) writeDirect(path string, data []byte, umask int) error {
	if s.write == nil && umask&0o600 == 0 {
		// The common case, a new file: three system calls.
		err := rawfile.WriteNew(path, data, 0o600)
		if !errors.Is(err, fs.ErrExist) {
			return err
		}
	}
	f, err := openDirect(path, umask)
	if err != nil {
		return err
	}
	write := f.Write
	if s.write != nil {
		write = func(b []byte) (int, error) { return s.write(f, b) }
	}
	n, err := write(data)
	if err == nil && n < len(data) {
		err = io.ErrShortWrite
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}

// openDirect opens a batch file for writeDirect, at mode 0600.
func openDirect(path string, umask int) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	fix := umask&0o600 != 0
	if errors.Is(err, fs.ErrExist) {
		// A re-run: the file must be a regular file of the batch, not a
		// symbolic link (followed, it would put a key outside the
		// directory and past the git guard) or a FIFO or device.
		if err := regularOrMissing(path); err != nil {
			return nil, err
		}
		f, err = os.OpenFile(path, os.O_WRONLY|os.O_TRUNC|oNoFollow, 0o600) // no O_CREATE: the mode is unused
		fix = true
	}
	if err != nil {
		return nil, err
	}
	if fix {
		if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
			f.Close()
			_ = os.Remove(path) // truncated, or new: nothing of value
			return nil, err
		}
	}
	return f, nil
}

// manifestWriter streams manifest.json through a secret-file write: the
// file appears, complete, only on commit.
type manifestWriter struct {
	pw    *io.PipeWriter
	bw    *bufio.Writer // batches entries: one pipe hand-off per 64 KiB
	done  chan error
	count int
}

func newManifestWriter(path string, head Manifest, spec BatchSpec) (*manifestWriter, error) {
	pr, pw := io.Pipe()
	m := &manifestWriter{pw: pw, bw: bufio.NewWriterSize(pw, 64<<10), done: make(chan error, 1)}
	go func() {
		// The manifest holds no keys (R18): the git guard does not apply
		// to it (it used to refuse it at the very end, after every device
		// was recorded and every image written). It is 0600 all the same.
		err := secfile.Write(path, secfile.Options{Replace: true, NotSecret: true, Warn: spec.Warn, StepHook: spec.StepHook}, func(w io.Writer) error {
			_, err := io.Copy(w, pr)
			return err
		})
		pr.CloseWithError(err)
		m.done <- err
	}()
	b, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	// {"version":1,…,"devices":[ … ]}
	if _, err := m.bw.Write(append(b[:len(b)-1], []byte(",\"devices\":[")...)); err != nil {
		return nil, err
	}
	return m, nil
}

func (m *manifestWriter) add(d ManifestDevice) error {
	b, err := json.Marshal(d)
	if err != nil {
		return err
	}
	sep := ",\n"
	if m.count == 0 {
		sep = "\n"
	}
	m.count++
	if _, err := m.bw.WriteString(sep); err != nil {
		return err
	}
	_, err = m.bw.Write(b)
	return err
}

func (m *manifestWriter) commit() error {
	if _, err := m.bw.WriteString("\n]}\n"); err != nil {
		return err
	}
	if err := m.bw.Flush(); err != nil {
		return err
	}
	m.pw.Close()
	err := <-m.done
	m.done = nil
	return err
}

// abort cancels an uncommitted manifest: no partial file is published.
func (m *manifestWriter) abort() {
	if m.done == nil {
		return
	}
	m.pw.CloseWithError(errors.New("batch aborted"))
	// Wait for the writer to finish. Its error is discarded on purpose: it
	// is the "batch aborted" just caused (secfile.Write then removes its
	// temporary file and publishes nothing), and the caller is already
	// returning the error that made it abort.
	<-m.done //nolint:errcheck // discarded on purpose, see above
}
