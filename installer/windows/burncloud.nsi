; BurnCloud for Windows: a per-user installer (no administrator rights), built with NSIS.
; `cargo xtask test` builds it on Linux with Debian's makensis from the cross-compiled
; burncloud.exe and lists its contents as a check:
;   makensis -DVERSION=0.1.0 -DEXE=path\to\burncloud.exe -DROOT=checkout -DOUTFILE=setup.exe burncloud.nsi
; On Windows the same script builds with NSIS 3 (or use cargo-packager, installer/Packager.toml).

Unicode true
SetCompressor /SOLID lzma
RequestExecutionLevel user

!ifndef VERSION
  !error "pass -DVERSION=x.y.z"
!endif
!ifndef EXE
  !error "pass -DEXE=path to burncloud.exe"
!endif
!ifndef ROOT
  !error "pass -DROOT=path to the checkout"
!endif
!ifndef OUTFILE
  !define OUTFILE "burncloud-${VERSION}-windows-x86_64-setup.exe"
!endif

!define APP "BurnCloud"
!define UNINST_KEY "Software\Microsoft\Windows\CurrentVersion\Uninstall\BurnCloud"

Name "${APP} ${VERSION}"
OutFile "${OUTFILE}"
InstallDir "$LOCALAPPDATA\Programs\BurnCloud"
InstallDirRegKey HKCU "Software\BurnCloud" "InstallDir"
ShowInstDetails show

Page directory
Page instfiles
UninstPage uninstConfirm
UninstPage instfiles

; The Evergreen WebView2 runtime, when the machine has none (Windows 10 LTSC, Server);
; Windows 11 and current Windows 10 have it.
Section "WebView2"
  ReadRegStr $0 HKLM "SOFTWARE\WOW6432Node\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}" "pv"
  ReadRegStr $1 HKCU "Software\Microsoft\EdgeUpdate\Clients\{F3017226-FE2A-4295-8BDF-00C3A9A7E4C5}" "pv"
  StrCmp "$0$1" "" 0 webview2_done
    NSISdl::download "https://go.microsoft.com/fwlink/p/?LinkId=2124703" "$TEMP\MicrosoftEdgeWebview2Setup.exe"
    ExecWait '"$TEMP\MicrosoftEdgeWebview2Setup.exe" /silent /install'
    Delete "$TEMP\MicrosoftEdgeWebview2Setup.exe"
  webview2_done:
SectionEnd

Section "BurnCloud" SecMain
  SectionIn RO
  SetOutPath "$INSTDIR"
  File "/oname=burncloud.exe" "${EXE}"
  File "/oname=LICENSE.txt" "${ROOT}/LICENSE"
  File "/oname=README.md" "${ROOT}/README.md"
  WriteUninstaller "$INSTDIR\uninstall.exe"
  CreateShortcut "$SMPROGRAMS\BurnCloud.lnk" "$INSTDIR\burncloud.exe"
  WriteRegStr HKCU "Software\BurnCloud" "InstallDir" "$INSTDIR"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayName" "${APP}"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayVersion" "${VERSION}"
  WriteRegStr HKCU "${UNINST_KEY}" "Publisher" "BurnCloud"
  WriteRegStr HKCU "${UNINST_KEY}" "DisplayIcon" "$INSTDIR\burncloud.exe"
  WriteRegStr HKCU "${UNINST_KEY}" "UninstallString" '"$INSTDIR\uninstall.exe"'
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoModify" 1
  WriteRegDWORD HKCU "${UNINST_KEY}" "NoRepair" 1
SectionEnd

; Uninstall keeps the data folder (%APPDATA%\burncloud), like the Linux packages.
Section "Uninstall"
  Delete "$INSTDIR\burncloud.exe"
  Delete "$INSTDIR\LICENSE.txt"
  Delete "$INSTDIR\README.md"
  Delete "$INSTDIR\uninstall.exe"
  RMDir "$INSTDIR"
  Delete "$SMPROGRAMS\BurnCloud.lnk"
  DeleteRegKey HKCU "${UNINST_KEY}"
  DeleteRegKey HKCU "Software\BurnCloud"
  DeleteRegValue HKCU "Software\Microsoft\Windows\CurrentVersion\Run" "BurnCloud"
SectionEnd
