"""SCF entry point of the console (handler ``index.main_handler``), deployed by hand: README, "The console"."""
from imguard.console.scf import create_handler

_app = create_handler()  # once per warm instance: a bad variable stops the cold start, naming each


def main_handler(event, context):
    return _app(event, context)
