{
  "targets": [
    {
      "target_name": "fcp_native",
      "sources": ["src/fcp_native.cc", "src/batch.cc", "src/beneath.cc", "src/sha256.cc", "src/xattrs.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED"
      ],
      "cflags_cc": ["-std=c++17", "-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"]
    }
  ]
}
