package partition

import "encoding/json"

// jsonPartition is one partition in the JSON form of a table. The field
// order is the documented one.
type jsonPartition struct {
	Name        string `json:"name"`
	Type        uint8  `json:"type"`
	Subtype     uint8  `json:"subtype"`
	Offset      uint32 `json:"offset"`
	Size        uint32 `json:"size"`
	Flags       uint32 `json:"flags"`
	TypeName    string `json:"type_name"`
	SubtypeName string `json:"subtype_name"`
}

// MarshalJSON gives the table as
// {"partitions":[{"name","type","subtype","offset","size","flags","type_name","subtype_name"}]},
// with type, subtype, offset, size and flags as integers and an empty
// table as "partitions":[].
func (t Table) MarshalJSON() ([]byte, error) {
	out := struct {
		Partitions []jsonPartition `json:"partitions"`
	}{Partitions: make([]jsonPartition, 0, len(t.Partitions))}
	for _, p := range t.Partitions {
		out.Partitions = append(out.Partitions, jsonPartition{
			Name:        p.Name,
			Type:        p.Type,
			Subtype:     p.Subtype,
			Offset:      p.Offset,
			Size:        p.Size,
			Flags:       p.Flags,
			TypeName:    p.TypeName(),
			SubtypeName: p.SubtypeName(),
		})
	}
	return json.Marshal(out)
}
