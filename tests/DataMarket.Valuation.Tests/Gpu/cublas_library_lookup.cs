using DataMarket.Valuation.Gpu;

namespace DataMarket.Valuation.Tests.Gpu;

/// <summary>Where the scoring GEMM looks for cuBLAS, tested without a GPU through a fake environment and loader.</summary>
public class cublas_library_lookup
{
    private static readonly Dictionary<string, string> Environment = new()
    {
        ["DATAMARKET_CUBLAS"] = "/opt/mine/libcublas.so.13",
        ["CUDA_HOME"] = "/opt/cuda",
        ["VIRTUAL_ENV"] = "/venv",
        ["HOME"] = "/home/u",
    };

    private static IEnumerable<string> Expand(string pattern) => pattern switch
    {
        "/usr/local/cuda-*/lib64" => ["/usr/local/cuda-12.4/lib64", "/usr/local/cuda-13.0/lib64"],
        "/venv/lib/python3*/site-packages/nvidia/cu13/lib" => ["/venv/lib/python3.12/site-packages/nvidia/cu13/lib"],
        "/usr/local/lib/python3*/dist-packages/nvidia/cublas/lib" => ["/usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib"],
        _ => [],
    };

    [Fact]
    public void candidates_go_explicit_file_then_loader_names_then_cuda_folders_then_python_wheels_newest_version_first()
    {
        var candidates = CuBlasLibrary.Candidates(name => Environment.GetValueOrDefault(name), Expand);

        Assert.Equal(
            [
                "/opt/mine/libcublas.so.13",
                "libcublas.so.13",
                "libcublas.so.12",
                "/opt/cuda/lib64/libcublas.so.13",
                "/opt/cuda/lib64/libcublas.so.12",
                "/usr/local/cuda/lib64/libcublas.so.13",
                "/usr/local/cuda/lib64/libcublas.so.12",
                "/usr/local/cuda-13.0/lib64/libcublas.so.13",
                "/usr/local/cuda-13.0/lib64/libcublas.so.12",
                "/usr/local/cuda-12.4/lib64/libcublas.so.13",
                "/usr/local/cuda-12.4/lib64/libcublas.so.12",
                "/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13",
                "/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.12",
                "/usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib/libcublas.so.13",
                "/usr/local/lib/python3.11/dist-packages/nvidia/cublas/lib/libcublas.so.12",
            ],
            candidates);
    }

    [Fact]
    public void the_first_candidate_that_loads_wins_and_its_cublaslt_is_loaded_before_it()
    {
        var candidates = CuBlasLibrary.Candidates(name => name is "DATAMARKET_CUBLAS" or "HOME" ? null : Environment.GetValueOrDefault(name), Expand);
        var tried = new List<string>();
        var lookup = CuBlasLibrary.Find(candidates, path =>
        {
            tried.Add(path);
            return path.StartsWith("/venv/", StringComparison.Ordinal) ? 42 : IntPtr.Zero;
        });

        Assert.True(lookup.Found);
        Assert.Equal("/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublas.so.13", lookup.Path);
        Assert.Equal("/venv/lib/python3.12/site-packages/nvidia/cu13/lib/libcublasLt.so.13", tried[^2]);
        Assert.Equal(lookup.Path, tried[^1]);
        Assert.Equal(candidates.TakeWhile(c => c != lookup.Path).Count() + 1, lookup.Searched.Count);
    }

    [Fact]
    public void nothing_loading_is_a_clean_not_found_naming_where_it_looked()
    {
        var lookup = CuBlasLibrary.Find(["libcublas.so.13", "/x/libcublas.so.12"], _ => IntPtr.Zero);

        Assert.False(lookup.Found);
        Assert.Null(lookup.Path);
        Assert.Equal(["libcublas.so.13", "/x/libcublas.so.12"], lookup.Searched);
        Assert.Contains("cuBLAS not found", lookup.Detail);
        Assert.Contains("DATAMARKET_CUBLAS", lookup.Detail);
    }

    [Fact]
    public void on_this_machine_the_real_lookup_answers_without_throwing()
    {
        // CI machines have no CUDA: the lookup must say "not found" cleanly. Where a cuBLAS exists it names the file.
        var lookup = CuBlasLibrary.Locate();
        Assert.Equal(lookup.Found, lookup.Path is not null);
        Assert.Contains(lookup.Found ? "cuBLAS from" : "cuBLAS not found", lookup.Detail);
        Assert.NotEmpty(lookup.Searched);
    }
}
