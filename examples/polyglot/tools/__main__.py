"""Entry point: printing is what a script is for."""

from . import report

if __name__ == "__main__":
    print(report.load("data.json"))
