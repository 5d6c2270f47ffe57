"""The scenario schema: one pydantic model per section of a scenario file.

Every key carries its unit in its name (``_hours``, ``_days``, ``_per_day``, ``_miles``, ``_m``).
Unknown keys are rejected, probabilities must lie in [0, 1] and dates are ISO dates. Cross-references
(a loadout naming a munition, a scripted attack naming a base) are checked in
:func:`check_references`, which reports the exact key path of the fault.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field

#: The largest magnitude of any number of a scenario: beyond it a value is a typo, not a scenario.
MAX_MAGNITUDE = 1_000_000
#: The longest scenario, in days (ten years).
MAX_SCENARIO_DAYS = 3660

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[float, Field(ge=0.0, le=MAX_MAGNITUDE)]
Positive = Annotated[float, Field(gt=0.0, le=MAX_MAGNITUDE)]
NonNegativeInt = Annotated[int, Field(ge=0, le=MAX_MAGNITUDE)]
PositiveInt = Annotated[int, Field(ge=1, le=MAX_MAGNITUDE)]
#: A rate of events per day: at most 100 a day (the campaign's was below 2).
RatePerDay = Annotated[float, Field(ge=0.0, le=100.0)]
#: A multiplier of a rate or a count: at most 100 times.
Multiplier = Annotated[float, Field(ge=0.0, le=100.0)]
#: How often a waiting process looks again, in hours: at least every 36 seconds, at most once a year.
RecheckHours = Annotated[float, Field(ge=0.01, le=8760.0)]

Country = Literal["Iraq", "Syria", "Jordan"]
WeaponType = Literal["rocket", "drone", "ballistic_missile"]
#: Attack severity levels, mildest first: a level's position is its severity index.
SeverityLevel = Literal["none", "minor_injuries", "serious_injuries", "deaths", "mass_casualty"]
Policy = Literal["severity_triggered", "proportional", "deaths_only", "never"]

COUNTRIES: tuple[str, ...] = get_args(Country)
WEAPON_TYPES: tuple[str, ...] = get_args(WeaponType)
SEVERITY_LEVELS: tuple[SeverityLevel, ...] = get_args(SeverityLevel)


class Section(BaseModel):
    """Base of every section: unknown keys are errors, values are immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class LogNormalHours(Section):
    """A positive duration drawn from a log-normal distribution, in hours."""

    median_hours: Positive
    log_sigma: NonNegative = Field(description="standard deviation of the log of the duration")


class LogNormalDays(Section):
    """A positive duration drawn from a log-normal distribution, in days."""

    median_days: Positive
    log_sigma: NonNegative


class Meta(Section):
    name: str
    description: str = ""
    start_date: dt.date = Field(description="first simulated day, 00:00 local time")
    end_date: dt.date = Field(description="last simulated day, inclusive")
    timezone: str = Field("UTC+3", description="label of the local time used in the event log")


class Driver(Section):
    """An exogenous multiplier on the militia's background attack rate over a date window."""

    start_date: dt.date
    end_date: dt.date = Field(description="last day of the window, inclusive")
    rate_multiplier: Multiplier
    source: str = ""


class Patron(Section):
    """The militias' patron, who can order the militias to halt their attacks (a switch of regime).

    The patron watches the campaign: once US personnel have been killed (``us_killed_threshold``)
    and, if ``requires_us_response``, the US command has started preparing an answer to an attack
    of ``min_response_severity`` or worse (the prospect of a large US response), it decides once,
    with ``order_probability``, to order a halt. The order comes ``order_lag`` after what set it
    off; the leading group suspends at once (``leading_group_share`` of the attacks stop), the
    others comply after a further ``compliance`` delay, and holdouts keep attacking at
    ``holdout_rate_multiplier`` of the rate until the halt ends after ``duration``.
    """

    enabled: bool = Field(description="false: no halt is ever ordered")
    us_killed_threshold: PositiveInt = Field(
        description="US killed in the campaign from which the patron weighs a halt"
    )
    requires_us_response: bool = Field(
        description="the order also needs a US response in preparation (the threat of one)"
    )
    min_response_severity: SeverityLevel = Field(
        description="a US response to an attack of this severity or worse is the threat"
    )
    order_probability: Probability = Field(description="chance that the patron orders the halt")
    order_lag: LogNormalHours = Field(description="from the trigger to the order")
    leading_group_share: Probability = Field(
        description="share of the attacks that stop at the order (the leading group)"
    )
    compliance: LogNormalDays = Field(description="from the order until every group complies")
    holdout_rate_multiplier: Probability = Field(
        description="attack rate once every group complies, as a share of the usual rate"
    )
    duration: LogNormalDays = Field(description="from the order to the end of the halt")


class Militia(Section):
    """Attack generation: a self-exciting point process with strike responses and a halt regime."""

    background_rate_per_day: RatePerDay
    branching_ratio: Annotated[float, Field(ge=0.0, lt=1.0)] = Field(
        description="expected attacks triggered by one attack (Hawkes branching ratio)"
    )
    excitation_decay_days: Positive
    counter_retaliation_attacks_per_severity: Multiplier = Field(
        description="expected extra attacks in the burst after a strike, per unit of strike severity"
    )
    counter_retaliation_decay_days: Positive
    deterrence_per_severity: Multiplier = Field(
        description="log-suppression of the attack rate added per unit of strike severity"
    )
    deterrence_decay_days: Positive
    capacity_regeneration_days: Positive = Field(
        description="time constant of the rebuilding of lost capacity"
    )
    capacity_floor: Probability = Field(description="capacity never falls below this share")


class WeaponProfile(Section):
    """One militia weapon type."""

    share: NonNegative = Field(description="relative frequency among attacks")
    salvo_mean: Annotated[float, Field(ge=1.0, le=1000.0)] = Field(description="mean projectiles per attack")
    harm_probability_per_hit: Probability = Field(
        description="chance that one projectile that is not intercepted harms US personnel"
    )


class Casualties(Section):
    """US casualties in an attack that harms someone: heavy-tailed counts."""

    injured_median: Positive = Field(description="median injured in a harmful attack")
    injured_log_sigma: NonNegative
    killed_probability: Probability = Field(description="chance that a harmful attack kills")
    killed_mean: Annotated[float, Field(ge=1.0, le=10_000.0)] = Field(
        description="mean killed in a lethal attack"
    )
    late_diagnosis_share: Probability = Field(
        0.0,
        description="share of the injured diagnosed later (mostly brain injuries): reported "
        "diagnosis_delay after the attack",
    )
    diagnosis_delay: LogNormalDays = Field(
        LogNormalDays(median_days=7.0, log_sigma=0.5),
        description="from the attack to the report of its late-diagnosed injured",
    )


class SeverityThresholds(Section):
    """How an attack's casualties map to its severity level."""

    serious_injured: PositiveInt = Field(description="injured at or above this is serious")
    mass_casualty_killed: PositiveInt
    mass_casualty_injured: PositiveInt


class Attacks(Section):
    weapons: dict[WeaponType, WeaponProfile]
    casualties: Casualties
    severity: SeverityThresholds


class Base(Section):
    """A US base or outpost that can be attacked."""

    name: str
    country: Country
    weight: NonNegative = Field(description="relative chance of being the target of an attack")
    intercept_probability: dict[WeaponType, Probability]


class ScriptedAttack(Section):
    """A documented attack injected at a fixed time with a fixed outcome."""

    time: dt.datetime = Field(description="local time of the attack")
    base: str = Field(description="key of a base in [bases]")
    weapon: WeaponType
    salvo: PositiveInt
    intercepted: NonNegativeInt = 0
    us_killed: NonNegativeInt
    us_injured: NonNegativeInt
    source: str = ""
    enabled: bool = Field(
        True,
        description="false: the attack does not happen (a scenario that extends another, for another period)",
    )
    engaged: bool = Field(
        False,
        description="aircraft in theatre engaged its launch team (under "
        "a policy that engages launch teams at all)",
    )
    later_diagnoses: bool = Field(
        True,
        description="us_injured is the first report: injuries diagnosed later come on top "
        "(attacks.casualties.late_diagnosis_share); false: it is the final count",
    )


class Package(Section):
    """The US strike package ordered in answer to an attack of one severity level."""

    asset: Literal["fighter", "bomber"]
    facilities: NonNegativeInt
    targets: NonNegativeInt
    targeted_strike_probability: Probability = Field(
        description="chance that an armed drone also hunts a militia commander"
    )


class DecisionLags(Section):
    """Time from the triggering attack to the order to strike, per asset class."""

    fighter: LogNormalHours
    bomber: LogNormalHours
    drone: LogNormalHours


class Warning(Section):
    """A public warning before a strike: militia disperse, targets stay where they are."""

    enabled: bool
    min_severity: SeverityLevel
    dispersal_fraction: Probability = Field(description="share of occupants who leave the targets")


class Weather(Section):
    """A strike waits for clear weather over the targets."""

    clear_probability: Probability
    recheck_hours: RecheckHours


class TargetedStrike(Section):
    """An armed-drone strike on a militia commander: with a package, or on its own."""

    success_probability: Probability
    escorts_killed_mean: NonNegative
    munitions: PositiveInt
    capacity_loss: Probability
    standalone_per_day: RatePerDay = Field(
        0.0, description="rate of strikes on commanders ordered on their own, without a package"
    )


class SelfDefense(Section):
    """Immediate engagements of launch teams by aircraft or armed drones already in theatre."""

    engagement_probability: Probability = Field(
        description="chance that an attack's launch team is found and engaged"
    )
    lag: LogNormalHours = Field(description="from the attack to the engagement")
    killed_mean: NonNegative = Field(description="militia killed in an engagement, mean")
    capacity_loss: Probability


class RunResponse(Section):
    """A planned strike in answer to a run of attacks, none of them severe on its own."""

    enabled: bool
    attacks: PositiveInt = Field(description="attacks within window_days that draw a strike")
    window_days: Positive
    cooldown_days: NonNegative = Field(description="no new run response this soon after one")
    package: SeverityLevel = Field(description="the package (of command.packages) that answers")


class Command(Section):
    """The US retaliation decision."""

    policy: Policy
    min_severity: SeverityLevel = Field(
        description="lowest severity answered under the severity_triggered policy"
    )
    decision_lag: DecisionLags
    packages: dict[SeverityLevel, Package]
    warning: Warning
    weather: Weather
    targeted_strike: TargetedStrike
    self_defense: SelfDefense
    run_response: RunResponse


class B1B(Section):
    """The CONUS B-1B package: fleet, generation, legs, tankers, crews and turnaround."""

    enabled: bool
    home_base: str
    fleet_at_home_base: NonNegativeInt
    mission_capable_rate: Probability
    aircraft_per_package: PositiveInt
    availability_recheck_hours: RecheckHours
    generation: LogNormalHours
    generation_on_warning_order: bool = Field(
        description="generation starts when the decision starts (a warning order), not after it"
    )
    round_trip_miles: Positive
    block_time_hours: Positive
    refuellings_per_leg: NonNegativeInt
    refuelling_hours: Positive
    tanker_pool: PositiveInt
    tanker_recovery_hours: NonNegative
    crews_available: PositiveInt
    crew_duty_limit_hours: Positive
    crew_rest_hours: NonNegative
    loadout: str = Field(description="key of weapons_per_aircraft and of [munitions]")
    weapons_per_aircraft: dict[str, PositiveInt]
    weapon_share: Probability = Field(
        description="share of a bomber package's weapons that the bombers deliver, if loads allow"
    )
    time_over_target_hours: Positive
    turnaround_hours: NonNegative
    breakage_probability: Probability
    repair: LogNormalHours


class Theatre(Section):
    """In-theatre strike aircraft flying short sorties."""

    aircraft_available: PositiveInt
    sortie_hours: Positive = Field(description="round trip of one sortie")
    weapons_per_sortie: PositiveInt
    munition: str = Field(description="key of [munitions]")


class Munition(Section):
    """Weaponeering figures of one precision-guided munition."""

    cep_m: Positive
    lethal_radius_m: Positive = Field(description="against a target with lethal_radius_factor 1")
    reliability: Probability
    arrival_probability: Probability


class TargetType(Section):
    share: NonNegative
    lethal_radius_factor: Positive = Field(description="hardness: below 1 for hardened targets")
    occupants_mean: NonNegative = Field(description="militia present at the target, mean")
    civilian_probability: Probability
    civilians_mean: NonNegative
    capacity_loss: Probability = Field(description="share of militia capacity lost if destroyed")


class Facility(Section):
    name: str
    country: Country
    weight: NonNegative = Field(description="relative chance of being chosen for a package")
    occupancy_factor: Multiplier = Field(
        1.0, description="multiplier on the occupants of its targets (a headquarters holds more people)"
    )


class Targets(Section):
    damage_function: Literal["cookie_cutter", "carleton"]
    desired_damage_expectancy: Annotated[float, Field(gt=0.0, lt=1.0)]
    max_weapons_per_target: PositiveInt
    reserve_fraction: NonNegative = Field(description="spare weapons loaded for re-attack, as a share")
    reattack: bool
    bda_detection_probability: Probability
    lethality_destroyed: Probability = Field(description="chance an occupant of a destroyed target dies")
    lethality_survived: Probability = Field(description="chance an occupant of a surviving target dies")
    types: dict[str, TargetType]
    facilities: dict[str, Facility]


class Ladder(Section):
    memory_days: Positive = Field(description="a rung stays current this long after its event")
    major_strike_targets: PositiveInt = Field(description="a strike on this many targets is major")


class Outcome(Section):
    window_days: Positive = Field(description="final window in which the outcome is judged")
    halted_max_attacks: NonNegativeInt
    spiral_rate_ratio: Positive = Field(
        description="spiral when the final window's attack rate is at least this times the mean"
    )


class Scenario(Section):
    """A whole, validated scenario."""

    meta: Meta
    militia: Militia
    patron: Patron
    drivers: dict[str, Driver] = {}
    attacks: Attacks
    bases: dict[str, Base]
    scripted_attacks: dict[str, ScriptedAttack] = {}
    command: Command
    b1b: B1B
    theatre: Theatre
    munitions: dict[str, Munition]
    targets: Targets
    ladder: Ladder
    outcome: Outcome

    @property
    def horizon_hours(self) -> float:
        """Simulated time from 00:00 of start_date to 24:00 of end_date, in hours."""
        return ((self.meta.end_date - self.meta.start_date).days + 1) * 24.0

    def hours_since_start(self, when: dt.date | dt.datetime) -> float:
        """Hours from 00:00 of start_date to ``when`` (a date means its 00:00)."""
        if not isinstance(when, dt.datetime):
            when = dt.datetime.combine(when, dt.time())
        start = dt.datetime.combine(self.meta.start_date, dt.time())
        return (when.replace(tzinfo=None) - start).total_seconds() / 3600.0


def check_references(s: Scenario) -> tuple[str, str] | None:
    """Return ``(key_path, reason)`` for the first broken cross-reference, or None."""
    if s.meta.end_date < s.meta.start_date:
        return "meta.end_date", f"{s.meta.end_date} is before meta.start_date {s.meta.start_date}"
    days = (s.meta.end_date - s.meta.start_date).days + 1
    if days > MAX_SCENARIO_DAYS:
        return "meta.end_date", (
            f"the scenario spans {days:,} days; at most {MAX_SCENARIO_DAYS:,} (ten years)"
        )
    for key, d in s.drivers.items():
        if d.end_date < d.start_date:
            return f"drivers.{key}.end_date", "is before its start_date"
    if not any(w.share > 0 for w in s.attacks.weapons.values()):
        return "attacks.weapons", "at least one weapon needs a share above 0"
    if not any(b.weight > 0 for b in s.bases.values()):
        return "bases", "at least one base needs a weight above 0"
    for key, b in s.bases.items():
        for w in s.attacks.weapons:
            if w not in b.intercept_probability:
                return f"bases.{key}.intercept_probability", f"missing weapon '{w}'"
    for key, a in s.scripted_attacks.items():
        if a.base not in s.bases:
            return f"scripted_attacks.{key}.base", f"'{a.base}' is not a key of [bases]"
        if a.intercepted > a.salvo:
            return f"scripted_attacks.{key}.intercepted", "exceeds salvo"
        if a.enabled and not 0 <= s.hours_since_start(a.time) < s.horizon_hours:
            return f"scripted_attacks.{key}.time", "lies outside meta.start_date..meta.end_date"
    for level in SEVERITY_LEVELS:
        if level not in s.command.packages:
            return "command.packages", f"missing package for severity '{level}'"
    usable = sum(f.weight > 0 for f in s.targets.facilities.values())
    for level, p in s.command.packages.items():
        if p.facilities > usable:
            return (
                f"command.packages.{level}.facilities",
                f"{p.facilities} facilities, but targets.facilities has {usable} with a weight above 0 "
                "(a package strikes each facility once)",
            )
        if p.targets < p.facilities:
            return f"command.packages.{level}.targets", "must be at least the number of facilities"
        if p.targets > 0 and p.facilities == 0:
            return f"command.packages.{level}.facilities", "a package with targets needs a facility"
    if s.b1b.loadout not in s.b1b.weapons_per_aircraft:
        return "b1b.loadout", f"'{s.b1b.loadout}' is not a key of b1b.weapons_per_aircraft"
    if s.b1b.loadout not in s.munitions:
        return "b1b.loadout", f"'{s.b1b.loadout}' is not a key of [munitions]"
    if s.theatre.munition not in s.munitions:
        return "theatre.munition", f"'{s.theatre.munition}' is not a key of [munitions]"
    bomber = s.b1b
    if (
        2 * bomber.refuellings_per_leg * bomber.refuelling_hours + bomber.time_over_target_hours
        >= bomber.block_time_hours
    ):
        return "b1b.block_time_hours", "shorter than the refuellings and time over target it holds"
    if not any(t.share > 0 for t in s.targets.types.values()):
        return "targets.types", "at least one target type needs a share above 0"
    if not any(f.weight > 0 for f in s.targets.facilities.values()):
        return "targets.facilities", "at least one facility needs a weight above 0"
    return None
