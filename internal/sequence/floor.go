package sequence

import "time"

// Floor returns the lowest number a store may hand out at the moment of the
// call, or 0 for none. It is read once per batch statement (Postgres) or
// once per call before its transaction (Bolt), and combined with each
// user's stored high h as max(h, floor-1)+1: numbers still never repeat or
// go back, and they are also at least the floor.
type Floor func() uint64

// ClockFloor is the clock floor of sequence.clock_floor: the time now in
// microseconds since 1970. A store that is lost, restored from a backup or
// failed over to a standby that missed the last commits then cannot hand
// out a number again, as long as the clock has moved on by more than the
// time that was lost: every new number is above every number handed out
// before (they were at most the time of their commit). The values stay
// below 2^53, so JavaScript clients read them exactly, until the year 2255.
// now is injected (time.Now in production).
func ClockFloor(now func() time.Time) Floor {
	return func() uint64 {
		us := now().UnixMicro()
		if us < 0 {
			return 0
		}
		return uint64(us)
	}
}

// base is the value a batch builds on: floor-1, so that the first number of
// a user whose stored high is below the floor is the floor itself. It is 0
// when there is no floor.
func (f Floor) base() uint64 {
	if f == nil {
		return 0
	}
	v := f()
	if v == 0 {
		return 0
	}
	// Keep within PostgreSQL's bigint with room for any batch.
	return min(v-1, 1<<62)
}
