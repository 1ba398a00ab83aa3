"""Label names of the built-in datasets, free of heavy imports so config validation is instant."""

from __future__ import annotations

CIFAR10_LABELS: tuple[str, ...] = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)

# The official CIFAR-100 superclass table: coarse label -> its five fine labels.
CIFAR100_SUPERCLASSES: dict[str, tuple[str, ...]] = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}

# Label indices follow the official archives: names sorted alphabetically.
CIFAR100_COARSE_LABELS: tuple[str, ...] = tuple(sorted(CIFAR100_SUPERCLASSES))
CIFAR100_FINE_LABELS: tuple[str, ...] = tuple(
    sorted(fine for fines in CIFAR100_SUPERCLASSES.values() for fine in fines)
)
# FINE_TO_COARSE[i] is the coarse index of fine label i.
CIFAR100_FINE_TO_COARSE: tuple[int, ...] = tuple(
    CIFAR100_COARSE_LABELS.index(coarse)
    for fine in CIFAR100_FINE_LABELS
    for coarse, fines in CIFAR100_SUPERCLASSES.items()
    if fine in fines
)

DIGITS_LABELS: tuple[str, ...] = tuple(str(digit) for digit in range(10))


def builtin_label_names(source: str, label_mode: str = "fine") -> tuple[str, ...] | None:
    """All class names of a built-in dataset, or None for sources whose names come from files."""
    if source == "cifar100":
        return CIFAR100_COARSE_LABELS if label_mode == "coarse" else CIFAR100_FINE_LABELS
    if source == "cifar10":
        return CIFAR10_LABELS
    if source == "digits":
        return DIGITS_LABELS
    return None


def parse_names(text: str) -> list[str]:
    """Class names typed by a user: one per line or comma-separated, blanks dropped.

    A single line with commas is a list; several lines are one name each (a name may then
    contain a comma, e.g. "bus, double-decker").
    """
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1:
        lines = lines[0].split(",")
    return [name.strip() for name in lines if name.strip()]


def display_name(name: str) -> str:
    """A class name as people read it: "maple_tree" -> "maple tree" (files keep the original).

    Every chart and caption shows this one spelling, so a class never looks like two.
    """
    return str(name).replace("_", " ")


def class_number(label: int, count: int) -> str:
    """ "6 of 10" for label index 5: people count classes from one, the files from zero."""
    return f"{label + 1} of {count}"
