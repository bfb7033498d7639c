class MissingPackageException(BaseException):
    """An optional package a feature needs is not installed."""

    def __init__(self, package: str):
        super().__init__(package)
        self.package = package

    def __str__(self) -> str:
        return f"The package `{self.package}` is needed for this feature; install it (e.g. `pip install {self.package}`)"
