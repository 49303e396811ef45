// The sim's network shim is loaded with LD_PRELOAD into pod processes; it exports only the libc functions it
// wraps (see simnet.c). This header exists because SwiftPM wants one per C target.
#pragma once
