/// A small, fast, seeded random generator (SplitMix64): the same seed gives the same numbers on every run, for
/// whatever must replay exactly (the benchmark's emulated losses, tests' shedding and stream sizes). Not for
/// anything an attacker may predict: the agents draw from `SystemRandomNumberGenerator`.
package struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64

    package init(seed: UInt64) {
        state = seed
    }

    package mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var mixed = state
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }
}
