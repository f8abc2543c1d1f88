package registry

import (
	"crypto/subtle"
	"fmt"
	"slices"
)

// reusedKeys returns a warning for every key about to be imported (by
// 'registry import', 'registry add --psk-file' or 'rotate --psk-file')
// that is also stored for another device, recorded or in the same write,
// or has a derived device's KCV: one leak of it then compromises every one
// of them (issue 13 item 9). Stored keys are compared in full; the KCV
// only narrows the search, as two different keys can share one. Random
// keys are not compared: they cannot repeat.
func (t *tx) reusedKeys(recs []*Record) ([]string, error) {
	byKCV := map[string][]*Record{}
	var kcvs []string
	for _, rec := range recs {
		if rec.Key == nil || rec.Source != SourceImported {
			continue
		}
		if _, seen := byKCV[rec.KCV]; !seen {
			kcvs = append(kcvs, rec.KCV)
		}
		byKCV[rec.KCV] = append(byKCV[rec.KCV], rec)
	}
	if len(kcvs) == 0 {
		return nil, nil
	}
	stored, err := t.storedWithKCV(kcvs)
	if err != nil {
		return nil, err
	}
	defer func() {
		for _, rec := range stored {
			rec.Destroy()
		}
	}()
	for _, rec := range stored {
		byKCV[rec.KCV] = append(byKCV[rec.KCV], rec)
	}
	slices.Sort(kcvs)
	var warnings []string
	for _, k := range kcvs {
		for _, ids := range sameKeys(byKCV[k]) {
			warnings = append(warnings, fmt.Sprintf("one key is stored for %d devices: %s (KCV %s); one leak compromises them all: give each device its own key ('usmp-psk rotate')", len(ids), quoteList(ids), k))
		}
	}
	derived, err := t.derivedWithKCV(kcvs)
	if err != nil {
		return nil, err
	}
	return append(warnings, derivedReuse(byKCV, kcvs, derived)...), nil
}

// derivedReuse warns of a key given for a device that has the KCV of a
// derived device's key (a derived key copied from 'usmp-psk derive' into
// an import file, say): without the master secret the keys cannot be
// compared, and two keys share a KCV once in 4 billion pairs, so it is a
// "probably", which check with the master secret settles.
func derivedReuse(byKCV map[string][]*Record, kcvs []string, derived map[string][]string) []string {
	var warnings []string
	for _, k := range kcvs {
		if len(derived[k]) == 0 {
			continue
		}
		var given []string
		for _, rec := range byKCV[k] {
			if rec.Source == SourceImported && !slices.Contains(derived[k], rec.ID) {
				given = append(given, rec.ID)
			}
		}
		slices.Sort(given)
		given = slices.Compact(given)
		if len(given) > 0 {
			warnings = append(warnings, fmt.Sprintf("the key given for %s has the KCV (%s) of the key derived for %s: probably the same key, which one leak would compromise for all of them ('usmp-psk registry check' with the master secret compares the keys themselves)", quoteList(given), k, quoteList(derived[k])))
		}
	}
	return warnings
}

// derivedWithKCV returns the ids of the recorded derived devices whose
// KCV is one of kcvs, by KCV, in id order.
func (t *tx) derivedWithKCV(kcvs []string) (map[string][]string, error) {
	rows, err := t.query("read the derived devices", `SELECT id, kcv FROM usmp_devices WHERE source = 'derived' AND kcv IN (`+t.s.dia.idSet+`) ORDER BY id`, t.s.dia.idSetArg(kcvs))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var id, kcv string
		if err := rows.Scan(&id, &kcv); err != nil {
			return nil, t.s.eng.dbErr("read the derived devices", err)
		}
		out[kcv] = append(out[kcv], id)
	}
	return out, t.s.eng.dbErr("read the derived devices", rows.Err())
}

// storedWithKCV returns the recorded devices with stored keys whose KCV is
// one of kcvs, keys included.
func (t *tx) storedWithKCV(kcvs []string) ([]*Record, error) {
	rows, err := t.query("read the stored keys", `SELECT `+columns(true)+` FROM usmp_devices WHERE source <> 'derived' AND kcv IN (`+t.s.dia.idSet+`)`, t.s.dia.idSetArg(kcvs))
	if err != nil {
		return nil, err
	}
	var out []*Record
	err = t.scanDevices(rows, true, func(r *Record) error { out = append(out, r); return nil })
	return out, err
}

// sameKeys groups recs by equal key and returns the ids of every group of
// more than one device, in id order.
func sameKeys(recs []*Record) [][]string {
	var groups [][]*Record
	for _, rec := range recs {
		placed := false
		for i, g := range groups {
			if subtle.ConstantTimeCompare(g[0].Key.Expose(), rec.Key.Expose()) == 1 {
				groups[i], placed = append(g, rec), true
				break
			}
		}
		if !placed {
			groups = append(groups, []*Record{rec})
		}
	}
	var out [][]string
	for _, g := range groups {
		if len(g) < 2 {
			continue
		}
		ids := make([]string, len(g))
		for i, rec := range g {
			ids[i] = rec.ID
		}
		slices.Sort(ids)
		out = append(out, ids)
	}
	return out
}
