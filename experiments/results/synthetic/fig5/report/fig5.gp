set terminal pngcairo size 1150,600 enhanced font 'sans,11'
set output 'experiments/results/synthetic/fig5/report/fig5.png'
set title 'Synthetic: zero-shot top-1 vs rate by d_sub at 400 bits (200 held-out classes)' noenhanced
set xlabel 'rate (bits per dimension, as coded)' noenhanced
set ylabel 'zero-shot top-1 accuracy (%)' noenhanced
set grid
set key outside right top box noenhanced
set yrange [40:95]
set offsets graph 0.03, graph 0.03, 0, 0
plot 'experiments/results/synthetic/fig5/report/fig5.dat' index 0 using 1:2 with linespoints lw 2 pt 5 title 'd_sub=8', \
     'experiments/results/synthetic/fig5/report/fig5.dat' index 1 using 1:2 with linespoints lw 2 pt 6 title 'd_sub=16', \
     'experiments/results/synthetic/fig5/report/fig5.dat' index 2 using 1:2 with linespoints lw 2 pt 7 title 'd_sub=32', \
     'experiments/results/synthetic/fig5/report/fig5.dat' index 3 using 1:2 with linespoints lw 2 pt 8 title 'd_sub=64', \
     83.34 with lines dt 2 lw 2 lc rgb 'black' title 'synthetic upper bound (uncompressed) 83.34%'
