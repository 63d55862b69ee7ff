package wire

import "time"

const timeLayout = "2006-01-02T15:04:05.000000000Z07:00"

// appendTime writes t as a quoted RFC 3339 UTC timestamp with nanoseconds
// (what timeLayout gives), or null for the zero time. Hand-rolled: it runs
// several times per event and time.AppendFormat is general-purpose.
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, "null"...)
	}
	secs, ns := t.Unix(), t.Nanosecond()
	if secs < 0 || secs >= 253402300800 { // outside 1970..9999: the general path
		b = append(b, '"')
		b = t.UTC().AppendFormat(b, timeLayout)
		return append(b, '"')
	}
	// civil date from days since 1970-01-01 (H. Hinnant's algorithm)
	z := secs/86400 + 719468
	era := z / 146097
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := int(doy - (153*mp+2)/5 + 1)
	mo := int(mp + 3)
	if mo > 12 {
		mo -= 12
	}
	y := int(yoe + era*400)
	if mo <= 2 {
		y++
	}
	sod := int(secs % 86400)
	h, mi, sec := sod/3600, sod/60%60, sod%60
	var buf [32]byte
	buf[0] = '"'
	put := func(at, width, v int) {
		for i := at + width - 1; i >= at; i-- {
			buf[i] = byte('0' + v%10)
			v /= 10
		}
	}
	put(1, 4, y)
	buf[5] = '-'
	put(6, 2, mo)
	buf[8] = '-'
	put(9, 2, d)
	buf[11] = 'T'
	put(12, 2, h)
	buf[14] = ':'
	put(15, 2, mi)
	buf[17] = ':'
	put(18, 2, sec)
	buf[20] = '.'
	put(21, 9, ns)
	buf[30] = 'Z'
	buf[31] = '"'
	return append(b, buf[:]...)
}
