using System.Numerics.Tensors;

namespace DataMarket.Compute;

/// <summary>
/// The operations valuation needs from a compute backend. GEMM and the LAPACK-style factorisations
/// are backend-specific; row-wise and elementwise operations share one managed implementation built on
/// <see cref="TensorPrimitives"/> because both backends run on the same CPU.
/// All matrices are row-major; leading dimensions are in elements.
/// </summary>
public abstract class ComputeBackend
{
    /// <summary>Short name reported in logs and benchmarks: "managed", "openblas".</summary>
    public abstract string Name { get; }

    /// <summary>C = alpha * op(A) * op(B) + beta * C, with op(A) m x k and op(B) k x n. When beta is 0, C is not read.</summary>
    public abstract void Gemm(Transpose transposeA, Transpose transposeB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int leadingDimensionA,
        ReadOnlySpan<float> b, int leadingDimensionB,
        float beta, Span<float> c, int leadingDimensionC);

    /// <summary>Double-precision GEMM with the same contract as the float overload.</summary>
    public abstract void Gemm(Transpose transposeA, Transpose transposeB, int m, int n, int k,
        double alpha, ReadOnlySpan<double> a, int leadingDimensionA,
        ReadOnlySpan<double> b, int leadingDimensionB,
        double beta, Span<double> c, int leadingDimensionC);

    /// <summary>
    /// <paramref name="batchCount"/> independent GEMMs whose operands start every <c>stride*</c> elements.
    /// </summary>
    public virtual void GemmBatched(Transpose transposeA, Transpose transposeB, int m, int n, int k,
        float alpha, ReadOnlySpan<float> a, int leadingDimensionA, long strideA,
        ReadOnlySpan<float> b, int leadingDimensionB, long strideB,
        float beta, Span<float> c, int leadingDimensionC, long strideC, int batchCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(batchCount);
        for (int batch = 0; batch < batchCount; batch++)
        {
            Gemm(transposeA, transposeB, m, n, k, alpha,
                Tail(a, batch * strideA), leadingDimensionA,
                Tail(b, batch * strideB), leadingDimensionB,
                beta, Tail(c, batch * strideC), leadingDimensionC);
        }
    }

    private static ReadOnlySpan<float> Tail(ReadOnlySpan<float> span, long start) =>
        start <= span.Length ? span[(int)start..] : throw new ArgumentException("A batch stride points past the end of its buffer.");

    private static Span<float> Tail(Span<float> span, long start) =>
        start <= span.Length ? span[(int)start..] : throw new ArgumentException("A batch stride points past the end of its buffer.");

    /// <summary>
    /// C = alpha * A * B + beta * C on tensors. Rank-2 views with unit row stride (for example from
    /// <see cref="Tensor.Transposed"/>) are passed as transposed operands, so no copy is made.
    /// Rank-3 tensors run as a batched GEMM over dimension 0.
    /// </summary>
    public void MatMul(Tensor a, Tensor b, Tensor c, float alpha = 1f, float beta = 0f)
    {
        ArgumentNullException.ThrowIfNull(a);
        ArgumentNullException.ThrowIfNull(b);
        ArgumentNullException.ThrowIfNull(c);
        if (a.Rank != b.Rank || a.Rank != c.Rank || a.Rank is < 2 or > 3)
        {
            throw new ArgumentException($"MatMul needs three tensors of rank 2 or 3; got {a.Rank}, {b.Rank}, {c.Rank}.");
        }
        int batch = a.Rank == 3 ? a.Shape[0] : 1;
        if (a.Rank == 3 && (b.Shape[0] != batch || c.Shape[0] != batch))
        {
            throw new ArgumentException("Batched MatMul needs equal batch sizes.");
        }
        int m = a.Shape[^2], k = a.Shape[^1], n = b.Shape[^1];
        if (b.Shape[^2] != k || c.Shape[^2] != m || c.Shape[^1] != n)
        {
            throw new ArgumentException($"Shapes do not chain: A {m}x{k}, B {b.Shape[^2]}x{n}, C {c.Shape[^2]}x{c.Shape[^1]}.");
        }
        var (transposeA, lda) = Layout(a);
        var (transposeB, ldb) = Layout(b);
        var (transposeC, ldc) = Layout(c);
        if (transposeC == Transpose.Transposed)
        {
            throw new ArgumentException("The output of MatMul must have unit column stride.");
        }
        var aSpan = Whole(a);
        var bSpan = Whole(b);
        var cSpan = Whole(c);
        if (a.Rank == 2)
        {
            Gemm(transposeA, transposeB, m, n, k, alpha, aSpan, lda, bSpan, ldb, beta, cSpan, ldc);
        }
        else
        {
            GemmBatched(transposeA, transposeB, m, n, k, alpha, aSpan, lda, a.Strides[0], bSpan, ldb, b.Strides[0],
                beta, cSpan, ldc, c.Strides[0], batch);
        }
    }

    private static (Transpose Transpose, int LeadingDimension) Layout(Tensor t)
    {
        long rowStride = t.Strides[^2], columnStride = t.Strides[^1];
        int rows = t.Shape[^2], columns = t.Shape[^1];
        if (columnStride == 1 || columns <= 1)
        {
            return (Transpose.None, (int)Math.Max(Math.Max(rowStride, columns), 1));
        }
        if (rowStride == 1 || rows <= 1)
        {
            return (Transpose.Transposed, (int)Math.Max(Math.Max(columnStride, rows), 1));
        }
        throw new ArgumentException("GEMM operands need unit stride in one of their last two dimensions; call ToContiguous() first.");
    }

    private static unsafe Span<float> Whole(Tensor t)
    {
        // The span covers from the view's first element to the end of its storage; GEMM's own bounds
        // checks then prove the view fits.
        long available = t.Storage.Length - t.Offset;
        return new Span<float>(t.Storage.Pointer + t.Offset, (int)Math.Min(available, int.MaxValue));
    }

    /// <summary>
    /// Cholesky factorisation of a symmetric positive definite n x n matrix, in place: on return the lower
    /// triangle holds L with A = L Lᵀ and the strict upper triangle is zero.
    /// </summary>
    /// <exception cref="ArgumentException">The matrix is not positive definite.</exception>
    public abstract void CholeskyFactor(Span<double> matrix, int n);

    /// <summary>Solves A X = B given the factor from <see cref="CholeskyFactor"/>; B is n x rightHandSides, overwritten by X.</summary>
    public abstract void CholeskySolve(ReadOnlySpan<double> factor, int n, Span<double> rightHandSides, int rightHandSideCount);

    /// <summary>
    /// Eigendecomposition of a symmetric n x n matrix: ascending eigenvalues and an n x n matrix whose
    /// column j is the unit eigenvector of eigenvalue j, so A = V diag(w) Vᵀ.
    /// </summary>
    public abstract void SymmetricEigen(ReadOnlySpan<double> matrix, int n, Span<double> eigenvalues, Span<double> eigenvectors);

    public void SoftmaxRows(ReadOnlySpan<float> input, Span<float> output, int columns) => RowOps.SoftmaxRows(input, output, columns);

    public void LogSoftmaxRows(ReadOnlySpan<float> input, Span<float> output, int columns) => RowOps.LogSoftmaxRows(input, output, columns);

    public void TopKRows(ReadOnlySpan<float> input, int columns, int k, Span<int> indices, Span<float> values) =>
        RowOps.TopKRows(input, columns, k, indices, values);

    public void ArgsortRows(ReadOnlySpan<float> input, int columns, Span<int> indices, bool descending = false) =>
        RowOps.ArgsortRows(input, columns, indices, descending);

    public void Add(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination) => TensorPrimitives.Add(x, y, destination);

    public void Multiply(ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination) => TensorPrimitives.Multiply(x, y, destination);

    public void Scale(ReadOnlySpan<float> x, float factor, Span<float> destination) => TensorPrimitives.Multiply(x, factor, destination);

    /// <summary>destination = alpha * x + y.</summary>
    public void Axpy(float alpha, ReadOnlySpan<float> x, ReadOnlySpan<float> y, Span<float> destination) => TensorPrimitives.MultiplyAdd(x, alpha, y, destination);

    public float Sum(ReadOnlySpan<float> x) => TensorPrimitives.Sum(x);

    public float Dot(ReadOnlySpan<float> x, ReadOnlySpan<float> y) => TensorPrimitives.Dot(x, y);

    public float Max(ReadOnlySpan<float> x) => TensorPrimitives.Max(x);

    public float Norm(ReadOnlySpan<float> x) => TensorPrimitives.Norm(x);

    public void FillUniform(Span<float> destination, SeededRandom random, float low = 0f, float high = 1f) => random.FillUniform(destination, low, high);

    public void FillNormal(Span<float> destination, SeededRandom random, float mean = 0f, float standardDeviation = 1f) => random.FillNormal(destination, mean, standardDeviation);

    public override string ToString() => Name;

    /// <summary>Shared argument validation so that every backend rejects the same bad calls the same way.</summary>
    protected internal static void ValidateGemm<T>(Transpose transposeA, Transpose transposeB, int m, int n, int k,
        ReadOnlySpan<T> a, int lda, ReadOnlySpan<T> b, int ldb, Span<T> c, int ldc)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(m);
        ArgumentOutOfRangeException.ThrowIfNegative(n);
        ArgumentOutOfRangeException.ThrowIfNegative(k);
        int aRows = transposeA == Transpose.None ? m : k, aColumns = transposeA == Transpose.None ? k : m;
        int bRows = transposeB == Transpose.None ? k : n, bColumns = transposeB == Transpose.None ? n : k;
        CheckOperand("A", a.Length, aRows, aColumns, lda);
        CheckOperand("B", b.Length, bRows, bColumns, ldb);
        CheckOperand("C", c.Length, m, n, ldc);
    }

    private static void CheckOperand(string name, int length, int rows, int columns, int leadingDimension)
    {
        if (leadingDimension < Math.Max(1, columns))
        {
            throw new ArgumentException($"Leading dimension of {name} is {leadingDimension}; it must be at least max(1, {columns}).");
        }
        long needed = rows == 0 || columns == 0 ? 0 : (long)(rows - 1) * leadingDimension + columns;
        if (length < needed)
        {
            throw new ArgumentException($"{name} holds {length} elements; a {rows}x{columns} operand with leading dimension {leadingDimension} needs {needed}.");
        }
    }
}
