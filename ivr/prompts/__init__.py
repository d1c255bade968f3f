"""IVR prompts: texts per locale (``<locale>.toml``), their sound files and the builder."""

from ivr.prompts.catalogue import (
    PromptCatalogue,
    PromptCatalogueError,
    UnknownPromptError,
    asterisk_language,
    sound_name,
)

__all__ = [
    "PromptCatalogue",
    "PromptCatalogueError",
    "UnknownPromptError",
    "asterisk_language",
    "sound_name",
]
