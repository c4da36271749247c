import aiohttp

from agent.detect import detect, find_installation
from agent.detect.views import (
    FakeFileSystem,
    FakeProcesses,
    FakeServices,
    HostView,
    ProcessInfo,
    ServiceInfo,
)
from agent.ollama import OllamaClient
from agent.ollama_host import parse_ollama_host
from tests.fakes.ollama import FakeOllama


def view(
    paths: set[str] | None = None,
    processes: list[ProcessInfo] | None = None,
    services: dict[str, ServiceInfo] | None = None,
    env: dict[str, str] | None = None,
    home: str = "/home/ada",
) -> HostView:
    return HostView(
        fs=FakeFileSystem(paths or set()),
        processes=FakeProcesses(processes or []),
        services=FakeServices(services or {}),
        env=env or {},
        home=home,
    )


# -- Linux ----------------------------------------------------------------------------------


def test_linux_install_script_layout() -> None:
    found = find_installation(
        "Linux",
        view(
            paths={"/usr/local/bin/ollama", "/usr/share/ollama/.ollama/models"},
            services={"ollama.service": ServiceInfo("systemd", "ollama.service", "active")},
        ),
    )
    assert found.binary == "/usr/local/bin/ollama"
    assert found.service == ServiceInfo("systemd", "ollama.service", "active")
    assert found.models_dir == "/usr/share/ollama/.ollama/models"


def test_linux_running_process_wins_over_paths() -> None:
    found = find_installation(
        "Linux",
        view(
            paths={"/usr/bin/ollama", "/home/ada/.ollama/models"},
            processes=[ProcessInfo(42, "ollama", "/opt/ollama/bin/ollama")],
        ),
    )
    assert found.binary == "/opt/ollama/bin/ollama"
    assert found.process is not None
    assert found.process.pid == 42
    assert found.models_dir == "/home/ada/.ollama/models"


def test_linux_binary_search_order_and_path() -> None:
    assert find_installation("Linux", view(paths={"/usr/bin/ollama", "/bin/ollama"})).binary == (
        "/usr/bin/ollama"
    )
    found = find_installation(
        "Linux", view(paths={"/home/ada/bin/ollama"}, env={"PATH": "/home/ada/bin:/usr/bin"})
    )
    assert found.binary == "/home/ada/bin/ollama"
    assert found.searched[:3] == ("/usr/local/bin/ollama", "/usr/bin/ollama", "/bin/ollama")


def test_linux_nothing_installed() -> None:
    services = {"ollama.service": ServiceInfo("systemd", "ollama.service", "not-found")}
    found = find_installation("Linux", view(services=services))
    assert (found.binary, found.service, found.models_dir, found.process) == (None,) * 4


def test_linux_ollama_models_variable_wins() -> None:
    found = find_installation("Linux", view(env={"OLLAMA_MODELS": "/data/models"}))
    assert found.models_dir == "/data/models"


# -- macOS ----------------------------------------------------------------------------------


def test_macos_app_and_launch_agent() -> None:
    found = find_installation(
        "Darwin",
        view(
            paths={
                "/Applications/Ollama.app/Contents/Resources/ollama",
                "/Users/ada/.ollama/models",
            },
            services={"com.ollama.ollama": ServiceInfo("launchd", "com.ollama.ollama", "running")},
            home="/Users/ada",
        ),
    )
    assert found.system == "Darwin"
    assert found.binary == "/Applications/Ollama.app/Contents/Resources/ollama"
    assert found.service is not None
    assert found.service.name == "com.ollama.ollama"
    assert found.models_dir == "/Users/ada/.ollama/models"


def test_macos_cli_only_install() -> None:
    found = find_installation("Darwin", view(paths={"/usr/local/bin/ollama"}, home="/Users/ada"))
    assert found.binary == "/usr/local/bin/ollama"
    assert found.service is None
    assert found.models_dir is None


def test_macos_prefers_the_server_process_over_the_menu_bar_app() -> None:
    processes = [
        ProcessInfo(1, "Ollama", "/Applications/Ollama.app/Contents/MacOS/Ollama"),
        ProcessInfo(2, "ollama", "/Applications/Ollama.app/Contents/Resources/ollama"),
    ]
    found = find_installation("Darwin", view(processes=processes, home="/Users/ada"))
    assert found.process == processes[1]


# -- Windows --------------------------------------------------------------------------------

WINDOWS_ENV = {
    "LOCALAPPDATA": r"C:\Users\ada\AppData\Local",
    "APPDATA": r"C:\Users\ada\AppData\Roaming",
    "USERPROFILE": r"C:\Users\ada",
}
STARTUP_LINK = (
    r"C:\Users\ada\AppData\Roaming\Microsoft\Windows\Start Menu\Programs\Startup\Ollama.lnk"
)


def test_windows_per_user_install_with_tray_app() -> None:
    found = find_installation(
        "Windows",
        view(
            paths={
                r"C:\Users\ada\AppData\Local\Programs\Ollama\ollama.exe",
                r"C:\Users\ada\.ollama\models",
                STARTUP_LINK,
            },
            processes=[ProcessInfo(7, "ollama app.exe", None)],
            env=WINDOWS_ENV,
            home=r"C:\Users\ada",
        ),
    )
    assert found.binary == r"C:\Users\ada\AppData\Local\Programs\Ollama\ollama.exe"
    assert found.service == ServiceInfo("startup-folder", STARTUP_LINK, "running")
    assert found.models_dir == r"C:\Users\ada\.ollama\models"


def test_windows_server_process_gives_the_binary() -> None:
    exe = r"D:\tools\ollama.exe"
    found = find_installation(
        "Windows",
        view(processes=[ProcessInfo(9, "ollama.exe", exe)], env=WINDOWS_ENV, home=r"C:\Users\ada"),
    )
    assert found.binary == exe
    assert found.service is None
    assert found.models_dir is None


def test_unknown_platform_finds_nothing() -> None:
    assert find_installation("Plan9", view()).binary is None


# -- the whole detection, against the fake Ollama ----------------------------------------


async def test_detect_probes_ollama_then_looks_locally(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    endpoint = parse_ollama_host(fake_ollama.base_url)
    client = OllamaClient(endpoint.base_url, session)
    detection = await detect(endpoint, client, "Linux", view(paths={"/usr/bin/ollama"}))
    assert detection.reachable
    assert detection.version == "0.9.6"
    assert detection.installed
    assert detection.installation.binary == "/usr/bin/ollama"
    assert fake_ollama.requests[:2] == ["GET /", "GET /api/version"]


async def test_detect_reports_why_ollama_is_unreachable(
    fake_ollama: FakeOllama, session: aiohttp.ClientSession
) -> None:
    fake_ollama.set_mode("error")
    client = OllamaClient(fake_ollama.base_url, session)
    detection = await detect(parse_ollama_host(fake_ollama.base_url), client, "Linux", view())
    assert not detection.reachable
    assert "HTTP 500" in str(detection.error)
    assert not detection.installed
