package registry

import (
	"context"
	"io"
	"time"

	"github.com/usmp/usmp-psk/internal/psk"
)

// Export is the key map of the active devices (registry export): device id
// → key, in id order. It holds key material: hand it only to WriteJSON
// towards a 0600 file or a pipe, then Destroy it.
type Export struct {
	ids  []string
	keys []*psk.Secret
}

// Len returns the number of devices.
func (e *Export) Len() int { return len(e.ids) }

// Destroy wipes every key (best effort, R26).
func (e *Export) Destroy() {
	for _, k := range e.keys {
		k.Destroy()
	}
}

// WriteJSON writes the map the gateway's load_psk_registry reads, one
// device per line, lowercase hex:
//
//	{
//	  "device-1": "82f1…",
//	  "device-2": "5a0c…"
//	}
//
// An empty export is "{}\n". The buffer is wiped after the write.
func (e *Export) WriteJSON(w io.Writer) error {
	n := 4
	for i, k := range e.keys {
		n += len(e.ids[i]) + 2*k.Len() + 10
	}
	buf := make([]byte, 0, n)
	defer func() { psk.Wipe(buf) }()
	if len(e.ids) == 0 {
		buf = append(buf, "{}\n"...)
	} else {
		buf = append(buf, "{\n"...)
		for i, id := range e.ids {
			buf = append(buf, "  "...)
			buf = appendString(buf, id)
			buf = append(buf, `: "`...)
			for _, c := range e.keys[i].Expose() {
				buf = append(buf, hexDigits[c>>4], hexDigits[c&0x0f])
			}
			buf = append(buf, '"')
			if i < len(e.ids)-1 {
				buf = append(buf, ',')
			}
			buf = append(buf, '\n')
		}
		buf = append(buf, "}\n"...)
	}
	_, err := w.Write(buf)
	return err
}

// Export returns the keys of every active device (registry export):
// stored keys as they are, derived keys from master at each device's epoch,
// each checked against its KCV. master may be nil when no active device is
// derived (Stats.NeedsMaster). The export's audit entry is committed, in
// the same transaction that read the keys, before they are returned: an
// export that is delivered always has its entry (one whose delivery fails
// afterwards is over-reported, never hidden). The caller writes the keys
// to a 0600 file or a pipe, then destroys them.
func (r *Registry) Export(ctx context.Context, master *psk.Secret) (*Export, error) {
	ex := &Export{}
	err := r.update(ctx, writeOpts{}, func(t *tx, now time.Time) error {
		err := t.eachDevice(`status = 'active'`, true, func(rec *Record) error {
			defer rec.Destroy()
			if rec.Source == SourceDerived && master.Len() == 0 {
				return &DeviceError{Err: ErrNeedMaster, Msg: "the registry has derived devices: exporting them needs the master secret"}
			}
			k, err := recordKey(rec, master)
			if err != nil {
				return err
			}
			ex.ids = append(ex.ids, rec.ID)
			ex.keys = append(ex.keys, k)
			return nil
		})
		if err != nil {
			return err
		}
		t.log(r.event(now, EventExport, nil))
		return nil
	})
	if err != nil {
		ex.Destroy()
		return nil, err
	}
	return ex, nil
}
